"""When is a study complete? DICOM has no end-of-study message, so we decide by quiet time.

Every stored instance pushes its study's ``ready_due_at`` to now + the quiet time of the
calling AE (default 60 s). A sweeper claims due studies with one atomic ``UPDATE ..
RETURNING``, so with several gateway processes on one database each study is handed over
exactly once per arrival burst. A STOW request with ``complete=true`` makes its study due at
once. An instance arriving after that re-opens the study, and it is handed over again when
it next falls quiet.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update

from medgate_gateway import metrics
from medgate_gateway.background import Periodic
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import Study, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StudyReady:
    """The event the workflow receives: a study has stopped changing."""

    study_uid: str
    reason: str  # "quiet" or "complete-hint"
    ready_at: dt.datetime
    first_received_at: dt.datetime
    num_series: int
    num_instances: int
    times_ready: int  # 1 the first time; more after late instances re-opened it


ReadyHandler = Callable[[StudyReady], None]


def log_ready(event: StudyReady) -> None:
    """The default hand-over until a workflow is attached: say so in the log."""
    log.info(
        "study ready",
        extra={"study_uid": event.study_uid, "reason": event.reason, "instances": event.num_instances},
    )


class StudyTracker:
    def __init__(self, db: Database, on_ready: ReadyHandler = log_ready, *, interval: float = 1.0) -> None:
        self.db = db
        self.on_ready = on_ready
        self._loop = Periodic(self.sweep, interval, "medgate-study-sweeper")

    def sweep(self, now: dt.datetime | None = None) -> list[StudyReady]:
        """Claim every study that has been quiet long enough and hand each to ``on_ready``."""
        now = now or utcnow()
        return self._claim(Study.ready_due_at <= now, now, "quiet")

    def mark_complete(self, study_uid: str) -> StudyReady | None:
        """The sender says the study is whole (STOW ``complete=true``): ready now."""
        now = utcnow()
        events = self._claim(Study.study_uid == study_uid, now, "complete-hint")
        return events[0] if events else None

    def _claim(self, condition: object, now: dt.datetime, reason: str) -> list[StudyReady]:
        stmt = (
            update(Study)
            .where(Study.state == "receiving", condition)  # type: ignore[arg-type]
            .values(state="ready", ready_at=now, ready_count=Study.ready_count + 1)
            .returning(
                Study.study_uid,
                Study.first_received_at,
                Study.num_series,
                Study.num_instances,
                Study.ready_count,
            )
        )
        with self.db.write() as session:
            rows = session.execute(stmt).all()
        events = []
        for uid, first, n_series, n_instances, count in rows:
            if first.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
                first = first.replace(tzinfo=dt.UTC)
            event = StudyReady(uid, reason, now, first, n_series, n_instances, count)
            metrics.STUDIES_READY.labels(reason).inc()
            metrics.STUDY_LATENCY.observe(max(0.0, (now - first).total_seconds()))
            events.append(event)
            try:
                self.on_ready(event)
            except Exception:  # the hand-over must not stop the sweeper
                log.exception("study-ready handler failed", extra={"study_uid": uid})
        return events

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
