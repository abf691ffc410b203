"""Celery task `vlm.reason` of the workflow (queue `vlm`).

Until the reasoning service lands, the step is a declared no-op: it reports ``not_installed``, so
the gateway records that no reasoning (triage, VQA, report) was made. It never invents a result.
"""

from __future__ import annotations

from celery import Celery

from medgate_common.schemas.workflow import StepName, StepRequest, StepResult
from medgate_common.tasking import StepSpec, step_task

SPEC = StepSpec(StepName.reasoning)


def run(request: StepRequest) -> StepResult:
    return StepResult.not_installed("no reasoning (triage, VQA, report) model is installed in this version of MedGate")


def register(app: Celery) -> None:
    step_task(app, SPEC)(run)
