"""Celery task ``iqa.assess`` of the workflow (queue ``iqa``): the quality gate.

The step reads the instances of the series routed to it from storage, judges the study
and answers with a :class:`StudyQualityReport` (the gateway routes on its verdict), and
leaves the same report as ``quality.json`` in the step's output folder. A study of which
no series can be judged fails the step with ``not_assessable``: the gate never lets a
study through unseen. The model is loaded once per worker process, on its first task
(after the fork, so pool processes do not share an ONNX Runtime session).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from celery import Celery

from medgate_common.schemas.workflow import Artifact, StepName, StepRequest, StepResult
from medgate_common.storage import LocalStorage
from medgate_common.tasking import PerProcess, StepSpec, StoredStep, step_task
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.runtime import build_assessor
from medgate_iqa.settings import IqaSettings

log = logging.getLogger(__name__)

SPEC = StepSpec(StepName.iqa)
REPORT_NAME = "quality.json"


def _instances(storage: LocalStorage, uris: tuple[str, ...]) -> Iterator[bytes]:
    # One instance in memory at a time: the assessor keeps the parsed dataset, not the bytes.
    for uri in uris:
        yield storage.get_bytes(uri)


class AssessStep(StoredStep[IqaSettings]):
    """The step with its storage and assessor; both are made on first use."""

    def __init__(self, settings: IqaSettings, assessor: QualityAssessor | None = None) -> None:
        super().__init__(settings)
        self._assessor = assessor

    @property
    def assessor(self) -> QualityAssessor:
        if self._assessor is None:
            self._assessor = build_assessor(self.settings)
        return self._assessor

    def run(self, request: StepRequest) -> StepResult:
        """Judge the study of ``request``; raises NotAssessableError when nothing can be judged."""
        storage = self.storage
        series = [(s.series_instance_uid, _instances(storage, s.instance_uris)) for s in request.study.series]
        report = self.assessor.assess_study(request.study.study_instance_uid, series)
        artifacts: tuple[Artifact, ...] = ()
        if request.output_prefix:
            artifacts = (self.put_json(self.output_folder(request), REPORT_NAME, report, "image-quality report"),)
        log.info(
            "study assessed",
            extra={
                "job_id": request.job_id,
                "verdict": report.verdict.value,
                "series": len(report.series),
                "not_assessable": len(report.not_assessable),
            },
        )
        return StepResult(result=report.model_dump(mode="json"), artifacts=artifacts, model=self.assessor.model.info)


_WORKER = PerProcess(lambda: AssessStep(IqaSettings()))


def run(request: StepRequest) -> StepResult:
    """``iqa.assess`` in a worker: the process's step, configured by ``MEDGATE_*``."""
    return _WORKER.get().run(request)


def register(app: Celery, step: AssessStep | None = None) -> None:
    """The ``medgate.tasks`` entry point; ``step`` replaces the environment's (tests)."""
    step_task(app, SPEC)(step.run if step is not None else run)
