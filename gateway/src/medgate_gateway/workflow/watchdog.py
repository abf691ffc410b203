"""Find work that fell between the database and the broker, and send it again.

The job tables are the truth; a message can vanish in ways the broker cannot fix:

- the gateway died after a study was claimed ready but before its job existed, or after a
  job or step was committed but before its message went out;
- Redis restarted without persistence and forgot its queues (this machine's Redis keeps
  nothing on disk), detected by its ``run_id`` changing;
- a message sat in a queue far longer than any backlog explains
  (``step_queued_timeout_seconds``);
- a worker died with a step and nobody redelivered it: the embedded broker never does,
  Redis only after its visibility timeout (``step_running_timeout_seconds``).

Sending again is safe because every step is idempotent and the event handler applies a
step's first final event only. A step sent ``step_max_dispatches`` times fails its job with
``step_lost``, which an operator can retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import and_, exists, select, true

from medgate_common.schemas import JobStatus, StepStatus
from medgate_common.schemas.workflow import StepRequest
from medgate_gateway import metrics
from medgate_gateway.db.orm import Job, JobStep, Study, utcnow
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.dispatch import build_request
from medgate_gateway.workflow.engine import ACTIVE_JOB, WorkflowEngine, lock_job, record

log = logging.getLogger(__name__)


class BrokerProbe:
    """Tells whether the broker restarted since the last look (Redis only; else never)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._last: str | None = None

    def run_id(self) -> str | None:
        if not self.url.startswith(("redis://", "rediss://")):
            return None
        import redis

        try:
            client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            try:
                return str(client.info("server")["run_id"])
            finally:
                client.close()
        except Exception:  # broker down: no answer yet, ask again next tick
            return None

    def restarted(self) -> bool:
        current = self.run_id()
        if current is None:
            return False
        before, self._last = self._last, current
        return before is not None and before != current


@dataclass
class TickReport:
    jobs_recovered: int = 0
    pending_sent: int = 0
    redispatched: int = 0
    failed: int = 0


class Watchdog:
    def __init__(self, engine: WorkflowEngine, settings: GatewaySettings, broker_url: str) -> None:
        self.engine = engine
        self.settings = settings
        self.probe = BrokerProbe(broker_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: dt.datetime | None = None) -> TickReport:
        now = now or utcnow()
        report = TickReport()
        report.jobs_recovered = self._jobs_for_ready_studies()
        report.pending_sent = self._send_pending()
        queued_age = dt.timedelta(seconds=self.settings.step_queued_timeout_seconds)
        running_age = dt.timedelta(seconds=self.settings.step_running_timeout_seconds)
        stale = [
            (StepStatus.queued, JobStep.dispatched_at < now - queued_age, "queued_timeout"),
            (StepStatus.running, JobStep.started_at < now - running_age, "running_timeout"),
        ]
        if self.probe.restarted():
            log.warning("the broker restarted: sending every queued step again")
            stale.append((StepStatus.queued, JobStep.dispatched_at <= now, "broker_restart"))
        for status, condition, reason in stale:
            sent, failed = self._redispatch(status, condition, reason)
            report.redispatched += sent
            report.failed += failed
        return report

    def redispatch_active(self, reason: str) -> int:
        """Send every queued and running step again, e.g. after the only worker died."""
        sent = 0
        for status in (StepStatus.queued, StepStatus.running):
            count, _ = self._redispatch(status, true(), reason)
            sent += count
        return sent

    def _jobs_for_ready_studies(self) -> int:
        """Studies claimed ready whose job was never written (the gateway died in between)."""
        has_job = exists().where(and_(Job.study_fk == Study.id, Job.times_ready == Study.ready_count))
        with self.engine.db.read() as session:
            rows = session.execute(
                select(Study.study_uid, Study.ready_count).where(Study.state == "ready", ~has_job)
            ).all()
        for uid, count in rows:
            job_id = self.engine.create_job(uid, trigger="recovered", times_ready=count)
            self.engine.kick(job_id)
        return len(rows)

    def _send_pending(self) -> int:
        with self.engine.db.read() as session:
            job_ids = session.scalars(
                select(Job.id)
                .where(Job.state.in_(list(ACTIVE_JOB)))
                .where(exists().where(and_(JobStep.job_fk == Job.id, JobStep.status == StepStatus.pending)))
            ).all()
        return sum(self.engine.kick(job_id) for job_id in job_ids)

    def _redispatch(self, status: StepStatus, condition: object, reason: str) -> tuple[int, int]:
        with self.engine.db.read() as session:
            candidates = session.execute(
                select(JobStep.job_fk, JobStep.step)
                .join(Job)
                .where(Job.state.in_(list(ACTIVE_JOB)), JobStep.status == status, condition)  # type: ignore[arg-type]
            ).all()
        requests: list[StepRequest] = []
        failed = 0
        for job_id, step_name in candidates:
            with self.engine.db.write() as session:
                job = lock_job(session, job_id)
                step = next((s for s in job.steps if s.step == step_name), None) if job else None
                if job is None or step is None or job.state not in ACTIVE_JOB or step.status != status:
                    continue  # moved on since we looked
                if step.dispatches >= self.settings.step_max_dispatches:
                    step.status = StepStatus.failed
                    step.error_code = "step_lost"
                    step.error_detail = f"sent {step.dispatches} times without an answer ({reason})"
                    record(session, job.id, StepStatus.failed, step=step.step, detail="step_lost")
                    self.engine.finish(session, job, JobStatus.failed, code="step_lost", detail=step.step)
                    failed += 1
                    continue
                step.status = StepStatus.queued
                step.dispatches += 1
                step.dispatched_at = utcnow()
                record(session, job.id, "redispatched", step=step.step, detail=reason)
                requests.append(build_request(session, job, step, self.engine.storage))
            metrics.STEP_REDISPATCHED.labels(reason).inc()
        if requests:
            log.warning("steps sent again", extra={"count": len(requests), "reason": reason})
        return self.engine.send(requests), failed

    # -- background thread -----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.probe.restarted()  # remember the broker's identity at start
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="medgate-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # database or broker hiccup: try again next tick
                log.exception("watchdog tick failed")
            if self._stop.wait(self.settings.watchdog_interval_seconds):
                return
