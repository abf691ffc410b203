"""State of a study workflow and its steps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel
from medgate_common.schemas.models import ModelInfo


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    quality_rejected = "quality_rejected"
    review_ready = "review_ready"
    signed = "signed"
    failed = "failed"

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.quality_rejected, JobStatus.review_ready, JobStatus.signed, JobStatus.failed}


class StepStatus(StrEnum):
    pending = "pending"  # waiting for the steps it depends on
    queued = "queued"  # sent to its queue
    running = "running"  # a worker reported that it started
    done = "done"
    skipped = "skipped"
    not_installed = "not_installed"
    failed = "failed"


class StepState(WireModel):
    name: str
    status: StepStatus
    series: tuple[str, ...] = Field(default=(), description="series the routing rules gave this step")
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = Field(default=None, description="compute time measured by the worker")
    worker: str = ""
    dispatches: int = 0
    attempts: int = 0
    duplicates: int = Field(default=0, description="repeated final events ignored (redelivered tasks)")
    error_code: str | None = None
    error_detail: str = ""
    model: ModelInfo | None = None
    result: dict[str, Any] | None = None


class JobState(WireModel):
    job_id: str
    study_instance_uid: DicomUID
    status: JobStatus
    run: int = 1
    trigger: str = ""
    steps: tuple[StepState, ...] = ()
    error_code: str | None = None
    error: str = Field(default="", description="why it failed, or why the quality gate rejected it")
    triage_score: float | None = Field(
        default=None, description="the reasoning step's p(abnormal), highest over the series; None: not scored"
    )
    triage_label: str | None = Field(default=None, description="the most likely triage class of that series")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class JobUpdate(WireModel):
    """One entry of a job's history, as the event stream sends it."""

    event_id: int
    job_id: str
    at: datetime
    step: str = ""
    status: str
    detail: str = ""
