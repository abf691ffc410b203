"""The study workflow as a state machine kept in the database.

Why not a Celery canvas (chain → chord)? A chord counts its finished members in the result
backend; with late acknowledgement a redelivered member counts twice or a lost one never,
and the canvas lives only in messages, so a Redis restart or a killed gateway loses it.
Here the job and its steps are rows. Steps run as Celery tasks in the services' workers and
answer with events on the ``gateway`` queue; the handler below applies each event once,
under a lock on the job row, and sends whatever became runnable. Anything that goes missing
between the database and the broker is found again by the watchdog and sent again; every
step is idempotent, so sending twice is safe and recording twice impossible.

    iqa ──▶ segmentation ──▶ reasoning ──▶ assemble ──▶ review_ready | quality_rejected

Reasoning waits for segmentation: its DICOM SR references the SEG segments and cites the
lesions, so it is handed the gate's and segmentation's results (``dispatch.upstream_params``).
    (any step failed ──▶ failed, POST /jobs/{id}/retry re-runs what did not finish)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medgate_common.errors import ConflictError, NotFoundError
from medgate_common.schemas import JobStatus, StepStatus, StudyQualityReport, Verdict
from medgate_common.schemas.workflow import StepEvent, StepEventKind, StepName, StepRequest
from medgate_common.storage import LocalStorage
from medgate_gateway import metrics
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import Job, JobEvent, JobStep, Study, utcnow
from medgate_gateway.ingest.completeness import StudyReady
from medgate_gateway.workflow.dispatch import Dispatcher, build_request
from medgate_gateway.workflow.rules import RoutingRules, SeriesFacts, plan_study
from medgate_gateway.workflow.triage import study_triage

log = logging.getLogger(__name__)

ROUTABLE = (StepName.iqa, StepName.segmentation, StepName.reasoning)
DEPENDS_ON: dict[StepName, tuple[StepName, ...]] = {
    StepName.iqa: (),
    StepName.segmentation: (StepName.iqa,),
    StepName.reasoning: (StepName.iqa, StepName.segmentation),
    StepName.assemble: ROUTABLE,
}
ENDED = {StepStatus.done, StepStatus.not_installed, StepStatus.skipped, StepStatus.failed}
PASSED = {StepStatus.done, StepStatus.not_installed, StepStatus.skipped}
ACTIVE_JOB = {JobStatus.queued, JobStatus.running}
_FINAL_STATUS = {
    StepEventKind.done: StepStatus.done,
    StepEventKind.not_installed: StepStatus.not_installed,
    StepEventKind.failed: StepStatus.failed,
}


def record(session: Session, job_id: str, status: str, *, step: str = "", detail: str = "") -> None:
    session.add(JobEvent(job_fk=job_id, step=step, status=status, detail=detail[:2000], at=utcnow()))


def lock_job(session: Session, job_id: str) -> Job | None:
    """The job row, locked until commit (PostgreSQL row lock; SQLite writes are serial)."""
    return session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()


def lock_step(session: Session, job_id: str, step_name: str) -> tuple[Job | None, JobStep | None]:
    """The job row locked (see :func:`lock_job`) and its step of that name, if both exist."""
    job = lock_job(session, job_id)
    step = next((s for s in job.steps if s.step == step_name), None) if job is not None else None
    return job, step


def gate_report(step: JobStep) -> StudyQualityReport | None:
    if step.status != StepStatus.done or not step.result:
        return None
    return StudyQualityReport.model_validate(step.result)


def record_triage(job: Job, reasoning: JobStep) -> None:
    """Copy the study's triage score out of the reasoning result onto the job (NULL if none)."""
    try:
        triage = study_triage(reasoning.result)
    except ValueError:  # pydantic's ValidationError: not a StudyReasoning; the step keeps it as sent
        log.warning("reasoning result without a readable triage", extra={"job_id": job.id})
        triage = None
    job.triage_score = triage.score if triage is not None else None
    job.triage_label = triage.label[:64] if triage is not None else None


class WorkflowEngine:
    def __init__(self, db: Database, storage: LocalStorage, dispatcher: Dispatcher, rules: RoutingRules) -> None:
        self.db = db
        self.storage = storage
        self.dispatcher = dispatcher
        self.rules = rules

    # -- creating jobs ---------------------------------------------------------------------

    def on_ready(self, event: StudyReady) -> None:
        """The hand-over from the completeness tracker."""
        job_id = self.create_job(event.study_uid, trigger=event.reason, times_ready=event.times_ready)
        self.kick(job_id)

    def create_job(self, study_uid: str, *, trigger: str, times_ready: int) -> str:
        """Create the job for this arrival of the study, or return the one that exists."""
        try:
            with self.db.write() as session:
                return self._create(session, study_uid, trigger, times_ready)
        except IntegrityError:  # a concurrent creator won; its job is the one
            with self.db.read() as session:
                found = session.scalar(
                    select(Job.id).join(Study).where(Study.study_uid == study_uid, Job.times_ready == times_ready)
                )
            if found is None:
                raise
            return found

    def _create(self, session: Session, study_uid: str, trigger: str, times_ready: int) -> str:
        study = session.execute(select(Study).where(Study.study_uid == study_uid)).scalar_one_or_none()
        if study is None:
            raise NotFoundError("no such study")
        existing = session.scalar(select(Job.id).where(Job.study_fk == study.id, Job.times_ready == times_ready))
        if existing is not None:
            return existing
        facts = [
            SeriesFacts(s.series_uid, s.modality, s.body_part, s.description, s.num_instances) for s in study.series
        ]
        plan = plan_study(self.rules, facts, study.last_calling_ae)
        job = Job(
            id=str(uuid.uuid4()),
            study_fk=study.id,
            state=JobStatus.queued,
            trigger=trigger,
            times_ready=times_ready,
            plan=plan.model_dump(mode="json"),
        )
        session.add(job)
        session.flush()
        for name in ROUTABLE:
            series = list(plan.steps.get(name, []))
            status = StepStatus.pending if series else StepStatus.skipped
            session.add(JobStep(job_fk=job.id, step=name.value, status=status, series=series))
        session.add(JobStep(job_fk=job.id, step=StepName.assemble.value, status=StepStatus.pending, series=[]))
        record(session, job.id, JobStatus.queued, detail=f"{trigger}; {len(facts)} series")
        metrics.JOBS_CREATED.inc()
        log.info("job created", extra={"job_id": job.id, "trigger": trigger})
        return job.id

    def reprocess(self, study_uid: str, *, actor: str = "") -> str:
        """Run the workflow again on a study as it is now (a new job; the old ones stay)."""
        with self.db.write() as session:
            study = session.execute(
                select(Study).where(Study.study_uid == study_uid).with_for_update()
            ).scalar_one_or_none()
            if study is None:
                raise NotFoundError("no such study")
            if study.state != "ready":
                raise ConflictError("the study is still receiving; it starts a job when it is complete")
            study.ready_count += 1
            count = study.ready_count
        trigger = (f"manual:{actor}" if actor else "manual")[:32]
        job_id = self.create_job(study_uid, trigger=trigger, times_ready=count)
        self.kick(job_id)
        return job_id

    # -- moving jobs forward ---------------------------------------------------------------

    def kick(self, job_id: str) -> int:
        """Send every step of the job that can run now; return how many were sent."""
        with self.db.write() as session:
            job = lock_job(session, job_id)
            requests = self.claim_runnable(session, job) if job is not None else []
        return self.send(requests)

    def claim_runnable(self, session: Session, job: Job) -> list[StepRequest]:
        """Mark runnable steps queued and build their requests (caller holds the job lock)."""
        if job.state not in ACTIVE_JOB:
            return []
        status = {StepName(s.step): StepStatus(s.status) for s in job.steps}
        requests = []
        now = utcnow()
        for step in job.steps:
            name = StepName(step.step)
            if step.status != StepStatus.pending or any(status[d] not in PASSED for d in DEPENDS_ON[name]):
                continue
            step.status = StepStatus.queued
            step.dispatches += 1
            step.dispatched_at = now
            step.run = job.run
            record(session, job.id, "queued", step=step.step)
            requests.append(build_request(session, job, step, self.storage))
        return requests

    def send(self, requests: Iterable[StepRequest]) -> int:
        sent = 0
        for request in requests:
            try:
                self.dispatcher.send(request)
                sent += 1
            except Exception:  # broker away: back to pending, the watchdog's next tick sends it
                log.exception("could not send step", extra={"job_id": request.job_id, "step": request.step.value})
                self._unclaim(request)
        return sent

    def _unclaim(self, request: StepRequest) -> None:
        with self.db.write() as session:
            job, step = lock_step(session, request.job_id, request.step.value)
            if (
                job is not None
                and step is not None
                and job.run == request.run
                and step.status == StepStatus.queued
                and step.dispatches == request.dispatch
            ):
                step.status = StepStatus.pending
                step.dispatches -= 1
                record(session, request.job_id, "unsent", step=step.step, detail="broker unavailable")

    def handle_event(self, event: StepEvent) -> None:
        """Apply one step event (idempotent) and send what became runnable."""
        requests: list[StepRequest] = []
        with self.db.write() as session:
            job, step = lock_step(session, event.job_id, event.step.value)
            if job is None or step is None or event.run != job.run:
                log.info("stale step event ignored", extra={"job_id": event.job_id, "step": event.step.value})
                return
            if event.kind is StepEventKind.started:
                self._started(session, job, step, event)
                return
            if step.status in ENDED:
                step.duplicates += 1
                metrics.STEP_DUPLICATES.labels(step.step).inc()
                return
            self._ended(session, job, step, event)
            requests = self.claim_runnable(session, job)
        self.send(requests)

    def reject_event(self, payload: dict[str, object], error: str) -> None:
        """An event that does not parse: fail its step (if it names one) instead of dropping it."""
        job_id, step_name = str(payload.get("job_id", "")), str(payload.get("step", ""))
        log.error("malformed step event", extra={"job_id": job_id, "step": step_name})
        with self.db.write() as session:
            job, step = lock_step(session, job_id, step_name)
            if job is None or step is None or step.status in ENDED or payload.get("run") != job.run:
                return
            step.status = StepStatus.failed
            step.error_code = "bad_event"
            step.error_detail = error[:2000]
            record(session, job.id, StepStatus.failed, step=step.step, detail="bad_event")
            if job.state in ACTIVE_JOB:
                self.finish(session, job, JobStatus.failed, code="bad_event", detail=step.step)

    def _started(self, session: Session, job: Job, step: JobStep, event: StepEvent) -> None:
        if step.status in ENDED or event.dispatch < step.dispatches:
            return  # over, or an older copy (a newer one was sent since); its result still counts
        if step.status != StepStatus.running or event.attempt > step.attempts:
            record(session, job.id, StepStatus.running, step=step.step, detail=f"attempt {event.attempt}")
        step.status = StepStatus.running
        step.started_at = utcnow()  # the gateway's clock: the watchdog compares against it
        step.worker = event.worker[:128]
        step.attempts = max(step.attempts, event.attempt)
        if job.state == JobStatus.queued:
            job.state = JobStatus.running
            record(session, job.id, JobStatus.running)

    def _ended(self, session: Session, job: Job, step: JobStep, event: StepEvent) -> None:
        status = _FINAL_STATUS[event.kind]
        metrics.STEP_EVENTS.labels(step.step, event.kind.value).inc()
        step.status = status
        step.finished_at = utcnow()
        step.duration_s = event.duration_s
        step.worker = event.worker[:128] or step.worker
        step.model = event.model.model_dump(mode="json") if event.model else None
        step.result = event.result
        step.artifacts = [a.model_dump(mode="json") for a in event.artifacts]
        step.error_code = event.error_code or ""
        step.error_detail = event.error_detail
        record(session, job.id, status, step=step.step, detail=event.error_code or event.error_detail)
        if event.step is StepName.reasoning and status is StepStatus.done:
            record_triage(job, step)  # even on a failed job: the result is kept for the retry
        if job.state == JobStatus.queued:  # its start event may come after its end event
            job.state = JobStatus.running
            record(session, job.id, JobStatus.running)
        if job.state not in ACTIVE_JOB:
            return  # a sibling of a failed step: keep its result for the retry
        if status is StepStatus.failed:
            self.finish(session, job, JobStatus.failed, code=event.error_code or "step_error", detail=step.step)
        elif event.step is StepName.iqa:
            try:
                gate_report(step)
            except ValueError as exc:  # pydantic's ValidationError: not a StudyQualityReport
                step.status = StepStatus.failed
                step.error_code = "bad_result"
                step.error_detail = str(exc)[:2000]
                record(session, job.id, StepStatus.failed, step=step.step, detail="bad_result")
                self.finish(session, job, JobStatus.failed, code="bad_result", detail=step.step)
                return
            self._apply_gate(session, job, step)
        elif event.step is StepName.assemble:
            self._finish_assembled(session, job)

    def _apply_gate(self, session: Session, job: Job, iqa: JobStep) -> None:
        report = gate_report(iqa)
        if report is None or report.verdict is not Verdict.reject or job.plan.get("quality_gate") != "enforce":
            return
        for step in job.steps:
            if step.step in (StepName.segmentation, StepName.reasoning) and step.status == StepStatus.pending:
                step.status = StepStatus.skipped
                step.error_detail = "quality gate: the study was rejected"
                record(session, job.id, StepStatus.skipped, step=step.step, detail="quality gate")

    def _finish_assembled(self, session: Session, job: Job) -> None:
        iqa = next(s for s in job.steps if s.step == StepName.iqa)
        report = gate_report(iqa)
        if report is not None and report.verdict is Verdict.reject and job.plan.get("quality_gate") == "enforce":
            reasons = "; ".join(report.reasons) or "image quality below the gate"
            self.finish(session, job, JobStatus.quality_rejected, code="", detail=reasons)
        else:
            self.finish(session, job, JobStatus.review_ready, code="", detail="")

    def finish(self, session: Session, job: Job, state: JobStatus, *, code: str, detail: str) -> None:
        job.state = state
        job.error_code = code
        job.error = detail
        job.finished_at = utcnow()
        record(session, job.id, state, detail=code or detail)
        metrics.JOBS_FINISHED.labels(state.value).inc()
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=job.finished_at.tzinfo)
        metrics.JOB_SECONDS.observe(max(0.0, (job.finished_at - created).total_seconds()))
        log.info("job finished", extra={"job_id": job.id, "state": state.value, "code": code})

    # -- operator actions -----------------------------------------------------------------

    def retry(self, job_id: str, *, actor: str = "") -> int:
        """Run a failed job again: steps that ended well keep their results; the rest re-run."""
        with self.db.write() as session:
            job = lock_job(session, job_id)
            if job is None:
                raise NotFoundError("no such job")
            if job.state != JobStatus.failed:
                raise ConflictError("only a failed job can be retried", state=job.state)
            job.run += 1
            job.state = JobStatus.queued
            job.error_code = ""
            job.error = ""
            job.finished_at = None
            for step in job.steps:
                if step.status in PASSED:
                    continue
                step.status = StepStatus.pending
                step.run = job.run
                step.dispatches = 0
                step.attempts = 0
                step.dispatched_at = step.started_at = step.finished_at = None
                step.error_code = ""
                step.error_detail = ""
            record(session, job.id, "retry", detail=f"run {job.run} by {actor}" if actor else f"run {job.run}")
            record(session, job.id, JobStatus.queued)
            requests = self.claim_runnable(session, job)
        return self.send(requests)
