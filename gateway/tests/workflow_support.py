"""Helpers for the workflow tests: tiny studies, a private Redis, waiting for jobs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select

from medgate_common.schemas import JobState
from medgate_common.schemas.workflow import StepRequest
from medgate_common.synth import SynthStudy, generate_study, write_dataset
from medgate_gateway.bench.pipeline import make_studies
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, Study
from medgate_gateway.embedded import EmbeddedStack
from medgate_gateway.ingest.ingestor import Source
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.views import job_state

T = TypeVar("T")


class RecordingDispatcher:
    """Stands in for the broker where a test is about the state machine, not the transport."""

    def __init__(self) -> None:
        self.sent: list[StepRequest] = []
        self.failures = 0

    def send(self, request: StepRequest) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        self.sent.append(request)

    def take(self) -> list[StepRequest]:
        sent, self.sent = self.sent, []
        return sent


def ingest_study(context: GatewayContext, *, description: str = "Axial 3mm", instances: int = 2) -> str:
    """A small CT study (real pydicom sample pixels) under fresh UIDs; returns its UID."""
    return make_studies(context, 1, instances, description=description, actor="test")[0]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def jobs_for(context: GatewayContext, study_uids: Iterable[str]) -> list[JobState]:
    with context.db.read() as session:
        jobs = session.scalars(select(Job).join(Study).where(Study.study_uid.in_(list(study_uids)))).all()
        return [job_state(session, job) for job in jobs]


def wait_terminal(context: GatewayContext, study_uids: list[str], timeout: float) -> list[JobState]:
    def done() -> list[JobState] | None:
        jobs = jobs_for(context, study_uids)
        return jobs if len(jobs) >= len(study_uids) and all(j.status.terminal for j in jobs) else None

    return wait_for(done, timeout, f"{len(study_uids)} job(s) to end")


PG_ADMIN = os.environ.get("MEDGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def executions(log: Path) -> list[dict[str, object]]:
    """What the workload steps ran, one entry per execution (see bench.workload)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@contextmanager
def model_stack(home: Path) -> Iterator[EmbeddedStack]:
    """The embedded stack with the real model steps in its worker (no HTTP, no listener),
    tuned to start jobs quickly; studies go in through ``stack.context.ingestor``."""
    settings = GatewaySettings(home=home, stable_seconds=1.0, sweep_interval_seconds=0.2, watchdog_interval_seconds=0.5)
    embedded = EmbeddedStack(settings, http=False, listener=False, supervise_interval=0.2)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def run_ct_study(
    context: GatewayContext, folder: Path, timeout: float
) -> tuple[SynthStudy, dict[str, object], JobState]:
    """A synthetic 32-slice CT study with four lesions, written to ``folder`` and sent in as
    STOW would, and its job once terminal: the study, what ``write_dataset`` wrote, the job."""
    study = generate_study("CT", seed=1, index=0, slices=32, matrix=128, lesion_count=4)
    truth = write_dataset(study, folder)
    for path in sorted((folder / "dicom").glob("*.dcm")):
        context.ingestor.ingest(path.read_bytes(), Source(transport="stow", actor="test"))
    [job] = wait_terminal(context, [str(truth["study_instance_uid"])], timeout)
    return study, truth, job
