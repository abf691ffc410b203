"""Celery task `iqa.assess` of the workflow (queue `iqa`).

Until the image-quality service lands, the step is a declared no-op: it reports ``not_installed``, so
the gateway records that no image-quality was made. It never invents a result.
"""

from __future__ import annotations

from celery import Celery

from medgate_common.schemas.workflow import StepName, StepRequest, StepResult
from medgate_common.tasking import StepSpec, step_task

SPEC = StepSpec(StepName.iqa)


def run(request: StepRequest) -> StepResult:
    return StepResult.not_installed("no image-quality model is installed in this version of MedGate")


def register(app: Celery) -> None:
    step_task(app, SPEC)(run)
