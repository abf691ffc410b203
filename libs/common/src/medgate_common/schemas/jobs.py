"""State of a study workflow and its steps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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
    pending = "pending"
    running = "running"
    done = "done"
    skipped = "skipped"
    not_installed = "not_installed"
    failed = "failed"


class StepState(WireModel):
    name: str
    status: StepStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    error_code: str | None = None
    model: ModelInfo | None = None


class JobState(WireModel):
    job_id: str
    study_instance_uid: DicomUID
    status: JobStatus
    steps: tuple[StepState, ...] = ()
    error_code: str | None = None
    created_at: datetime
    updated_at: datetime
