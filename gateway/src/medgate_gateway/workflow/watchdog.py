"""Find work that fell between the database and the broker, and send it again.

The job tables are the truth; a message can vanish in ways the broker cannot fix:

- the gateway died after a study was claimed ready but before its job existed, or after a
  job or step was committed but before its message went out;
- Redis restarted without persistence and forgot its queues (this machine's Redis keeps
  nothing on disk), detected by its ``run_id`` changing;
- a step has been queued for ``step_queued_timeout_seconds`` and its queue is empty, so
  its message is gone (a long backlog is never taken for a loss);
- a worker died with a step and nobody redelivered it: the embedded broker never does,
  Redis only after its visibility timeout (``step_running_timeout_seconds``).

Sending again is safe because every step is idempotent and the event handler applies a
step's first final event only. A step sent ``step_max_dispatches`` times fails its job with
``step_lost``, which an operator can retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import and_, exists, select

from medgate_common.schemas import JobStatus, StepStatus
from medgate_common.schemas.workflow import StepName, StepRequest
from medgate_gateway import metrics
from medgate_gateway.background import Periodic
from medgate_gateway.db.orm import Job, JobStep, Study, utcnow
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.dispatch import build_request
from medgate_gateway.workflow.engine import ACTIVE_JOB, DEPENDS_ON, PASSED, WorkflowEngine, lock_step, record
from medgate_gateway.workflow.views import utc

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

    def queue_length(self, queue: str) -> int | None:
        """Messages waiting in ``queue``; None when this broker cannot tell."""
        try:
            if self.url.startswith(("redis://", "rediss://")):
                import redis

                client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
                try:
                    return int(client.llen(queue))
                finally:
                    client.close()
            if self.url.startswith(("mgsqla+sqlite:///", "sqla+sqlite:///")):
                return _sqlite_queue_length(self.url.split("sqlite:///", 1)[1], queue)
        except Exception:  # broker down or tables not there yet: cannot tell
            return None
        return None

    def restarted(self) -> bool:
        current = self.run_id()
        if current is None:
            return False
        before, self._last = self._last, current
        return before is not None and before != current


def _sqlite_queue_length(path: str, queue: str) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
            "WHERE q.name = ? AND m.visible",
            (queue,),
        ).fetchone()
    return int(row[0])


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
        self._loop = Periodic(self.tick, settings.watchdog_interval_seconds, "medgate-watchdog", immediately=True)

    def tick(self, now: dt.datetime | None = None) -> TickReport:
        now = now or utcnow()
        report = TickReport()
        report.jobs_recovered = self._jobs_for_ready_studies(now)
        report.pending_sent = self._send_pending()
        queued_cutoff = now - dt.timedelta(seconds=self.settings.step_queued_timeout_seconds)
        running_cutoff = now - dt.timedelta(seconds=self.settings.step_running_timeout_seconds)
        if self.probe.restarted():
            log.warning("the broker restarted: sending every queued step again")
            # Only what was sent before the restart was seen; a step another gateway replica
            # already re-sent carries a later time and is left alone.
            self._count(report, self._redispatch(StepStatus.queued, now, "broker_restart"))
        self._count(report, self._redispatch(StepStatus.queued, queued_cutoff, "queued_timeout", only_if_idle=True))
        self._count(report, self._redispatch(StepStatus.running, running_cutoff, "running_timeout"))
        return report

    @staticmethod
    def _count(report: TickReport, outcome: tuple[int, int]) -> None:
        report.redispatched += outcome[0]
        report.failed += outcome[1]

    def redispatch_active(self, reason: str) -> int:
        """Send every queued and running step again, e.g. after the only worker died."""
        sent = 0
        # Everything, even a step that seems to have started a moment ago: that "started"
        # may be the last word of the dead worker, still in flight when it died.
        everything = utcnow() + dt.timedelta(days=1)
        for status in (StepStatus.queued, StepStatus.running):
            count, _ = self._redispatch(status, everything, reason)
            sent += count
        return sent

    def _jobs_for_ready_studies(self, now: dt.datetime) -> int:
        """Studies claimed ready whose job was never written (the gateway died in between).

        Only the last day's: studies that became ready while the workflow was switched off,
        or before it existed, are not processed behind the operator's back.
        """
        has_job = exists().where(and_(Job.study_fk == Study.id, Job.times_ready == Study.ready_count))
        since = now - dt.timedelta(days=1)
        with self.engine.db.read() as session:
            rows = session.execute(
                select(Study.study_uid, Study.ready_count).where(
                    Study.state == "ready", Study.ready_at >= since, ~has_job
                )
            ).all()
        recovered = 0
        for uid, count in rows:
            try:
                job_id = self.engine.create_job(uid, trigger="recovered", times_ready=count)
                self.engine.kick(job_id)
                recovered += 1
            except Exception:  # one bad study must not stop the rest of the recovery
                log.exception("could not recover the job of a ready study")
        return recovered

    def _send_pending(self) -> int:
        """Kick jobs that have a pending step whose dependencies have passed (never sent)."""
        with self.engine.db.read() as session:
            rows = session.execute(
                select(JobStep.job_fk, JobStep.step, JobStep.status).join(Job).where(Job.state.in_(list(ACTIVE_JOB)))
            ).all()
        status: dict[str, dict[StepName, str]] = {}
        for job_id, step, step_status in rows:
            status.setdefault(job_id, {})[StepName(step)] = step_status
        sent = 0
        for job_id, steps in status.items():
            runnable = any(
                st == StepStatus.pending and all(steps.get(d) in PASSED for d in DEPENDS_ON[name])
                for name, st in steps.items()
            )
            if runnable:
                try:
                    sent += self.engine.kick(job_id)
                except Exception:
                    log.exception("could not send the pending steps of a job", extra={"job_id": job_id})
        return sent

    def _redispatch(
        self, status: StepStatus, cutoff: dt.datetime, reason: str, *, only_if_idle: bool = False
    ) -> tuple[int, int]:
        """Send again the steps in ``status`` since before ``cutoff``; return (sent, failed jobs).

        ``only_if_idle``: only when the step's queue is empty, so that a long backlog is
        never mistaken for lost messages (a queue the broker cannot count counts as empty).
        """
        column = JobStep.dispatched_at if status is StepStatus.queued else JobStep.started_at
        with self.engine.db.read() as session:
            candidates = session.execute(
                select(JobStep.job_fk, JobStep.step)
                .join(Job)
                .where(Job.state.in_(list(ACTIVE_JOB)), JobStep.status == status, column < cutoff)
            ).all()
        sent = failed = 0
        idle: dict[str, bool] = {}
        for job_id, step_name in candidates:
            queue = StepName(step_name).queue
            if only_if_idle:
                if queue not in idle:
                    idle[queue] = not self.probe.queue_length(queue)
                if not idle[queue]:
                    continue
            try:
                request, lost = self._claim_again(job_id, step_name, status, cutoff, reason)
            except Exception:  # one job's trouble must not stop the others
                log.exception("could not re-send a step", extra={"job_id": job_id})
                continue
            failed += lost
            if request is not None:
                metrics.STEP_REDISPATCHED.labels(reason).inc()
                sent += self.engine.send([request])
        if sent:
            log.warning("steps sent again", extra={"count": sent, "reason": reason})
        return sent, failed

    def _claim_again(
        self, job_id: str, step_name: str, status: StepStatus, cutoff: dt.datetime, reason: str
    ) -> tuple[StepRequest | None, int]:
        with self.engine.db.write() as session:
            job, step = lock_step(session, job_id, step_name)
            if job is None or step is None or job.state not in ACTIVE_JOB or step.status != status:
                return None, 0  # moved on since we looked
            since = utc(step.dispatched_at if status is StepStatus.queued else step.started_at)
            if since is not None and since >= cutoff:
                return None, 0  # sent or started again meanwhile (maybe by another replica)
            if step.dispatches >= self.settings.step_max_dispatches:
                step.status = StepStatus.failed
                step.error_code = "step_lost"
                step.error_detail = f"sent {step.dispatches} times without an answer ({reason})"
                record(session, job.id, StepStatus.failed, step=step.step, detail="step_lost")
                self.engine.finish(session, job, JobStatus.failed, code="step_lost", detail=step.step)
                return None, 1
            step.status = StepStatus.queued
            step.dispatches += 1
            step.dispatched_at = utcnow()
            record(session, job.id, "redispatched", step=step.step, detail=reason)
            return build_request(session, job, step, self.engine.storage), 0

    # -- background thread -----------------------------------------------------------------

    def start(self) -> None:
        self.probe.restarted()  # remember the broker's identity at start
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
