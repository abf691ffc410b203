"""What a workflow step receives and what it reports back.

The gateway owns the job; a service only runs one step of it. A step gets a
:class:`StepRequest` (which study, which series, where to write its files) and answers with
:class:`StepEvent` messages on the ``gateway`` queue: ``started`` when it begins, then one
of ``done``, ``not_installed`` or ``failed``. Events carry JSON results and storage URIs,
never pixels. A redelivered task sends its events again; the gateway applies each
transition once, so a step never yields two results.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, JsonValue

from medgate_common.schemas.base import WireModel
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.study import StudyRef


class StepName(StrEnum):
    """The steps of a study workflow, in the order a job runs them."""

    iqa = "iqa"
    segmentation = "segmentation"
    reasoning = "reasoning"
    assemble = "assemble"

    @property
    def task(self) -> str:
        """The Celery task name: ``<service>.<verb>``."""
        return _TASKS[self][0]

    @property
    def queue(self) -> str:
        """The queue, named after the service that consumes it."""
        return _TASKS[self][1]


_TASKS: dict[StepName, tuple[str, str]] = {
    StepName.iqa: ("iqa.assess", "iqa"),
    StepName.segmentation: ("seg.segment", "segmentation"),
    StepName.reasoning: ("vlm.reason", "vlm"),
    StepName.assemble: ("gateway.assemble", "gateway"),
}

#: The queue and task the gateway consumes step events from.
EVENT_TASK = "gateway.step_event"
GATEWAY_QUEUE = "gateway"
ALL_QUEUES = ("iqa", "segmentation", "vlm", GATEWAY_QUEUE)
#: ``StepRequest.params`` key under which the gateway hands a step the results of the steps it
#: depends on (``{"iqa": <StudyQualityReport>, "segmentation": <StudySegmentation>}``, each only
#: when that step ended ``done`` with a result).
UPSTREAM = "upstream"


class StepRequest(WireModel):
    job_id: str = Field(min_length=1, max_length=36)
    step: StepName
    run: int = Field(ge=1, description="Job run: 1, then +1 for every retry of the job")
    dispatch: int = Field(ge=1, description="How many times this step was sent in this run")
    study: StudyRef = Field(description="Only the series routed to this step")
    output_prefix: str = Field(description="Storage URI prefix this step writes its files under")
    params: dict[str, JsonValue] = Field(default_factory=dict)

    def upstream(self, step: StepName) -> dict[str, Any] | None:
        """The result of an earlier step of this job, as the gateway handed it over (or None)."""
        found = self.params.get(UPSTREAM)
        value = found.get(step.value) if isinstance(found, dict) else None
        return value if isinstance(value, dict) else None

    def event(self, kind: StepEventKind, **fields: Any) -> StepEvent:
        """An event about this request, stamped now; ``fields`` fill in the rest."""
        return StepEvent(
            job_id=self.job_id,
            step=self.step,
            run=self.run,
            dispatch=self.dispatch,
            kind=kind,
            at=datetime.now(UTC),
            **fields,
        )


class Artifact(WireModel):
    """A file a step wrote: a DICOM object to index into the study, an overlay, a JSON."""

    uri: str
    media_type: str = Field(description="application/dicom, image/png, application/json, ...")
    description: str = ""


class StepEventKind(StrEnum):
    started = "started"
    done = "done"
    not_installed = "not_installed"
    failed = "failed"

    @property
    def final(self) -> bool:
        return self is not StepEventKind.started


class StepEvent(WireModel):
    job_id: str
    step: StepName
    run: int = Field(ge=1)
    dispatch: int = Field(ge=1)
    kind: StepEventKind
    at: datetime
    attempt: int = Field(default=1, ge=1, description="1, then +1 for every retry after a transient error")
    worker: str = Field(default="", description="host and pid that ran the step")
    duration_s: float | None = Field(default=None, ge=0.0, description="compute time of the step")
    result: dict[str, Any] | None = None
    artifacts: tuple[Artifact, ...] = ()
    model: ModelInfo | None = None
    error_code: str | None = None
    error_detail: str = ""


class StepResult(WireModel):
    """What a step's code returns to the task wrapper, which turns it into an event."""

    result: dict[str, Any] | None = None
    artifacts: tuple[Artifact, ...] = ()
    model: ModelInfo | None = None
    installed: bool = True
    note: str = ""

    @classmethod
    def not_installed(cls, note: str) -> StepResult:
        """A declared no-op: the service's model is not part of this installation."""
        return cls(installed=False, note=note)
