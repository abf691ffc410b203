"""Calibrated stand-ins for the three model steps, for the pipeline benchmark and fault tests.

The benchmark measures what the workflow adds around the steps, so it needs steps that
cost a known amount of compute; the fault tests need steps that are slow enough to be
killed, that fail on demand and that reject on demand. These do exactly that and nothing
else; they are loaded only when asked for (``medgate worker --tasks
medgate_gateway.bench.workload``), never by default, and their results name the model
``workload`` so nobody mistakes them for an assessment.

Behaviour, from the worker's environment:

- ``MEDGATE_WORKLOAD_SECONDS`` (default 0.2), or ``MEDGATE_WORKLOAD_SECONDS_<STEP>``: CPU
  time each step burns (floating-point work on one core);
- ``MEDGATE_WORKLOAD_LOG``: a file that gets one JSON line per execution (step, job, pid,
  attempt), so tests can count redeliveries;
- ``MEDGATE_WORKLOAD_FAIL_FLAG`` + ``MEDGATE_WORKLOAD_FAIL_STEP``: while the flag file
  exists, that step fails (``MEDGATE_WORKLOAD_FAIL_MODE`` ``permanent`` or ``transient``);
- a series whose description contains ``REJECT`` gets the verdict reject from ``iqa``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from celery import Celery

from medgate_common.errors import MedgateError, TransientError
from medgate_common.schemas import ModelInfo, QualityReport, QualityStatistics, StudyQualityReport, Verdict
from medgate_common.schemas.workflow import StepName, StepRequest, StepResult
from medgate_common.tasking import StepSpec, step_task

MODEL = ModelInfo(name="workload", version="1", sha256=hashlib.sha256(b"medgate-workload").hexdigest(), backend="none")


class WorkloadFailureError(MedgateError):
    code = "workload_failure"
    http_status = 422


def burn(seconds: float) -> float:
    """Do floating-point work for ``seconds`` of this process's CPU time; return it."""
    start = time.process_time()
    a = np.random.default_rng(0).standard_normal((96, 96))
    while time.process_time() - start < seconds:
        a = np.tanh(a @ a.T / 96.0)
    return time.process_time() - start


def _log(request: StepRequest) -> None:
    target = os.environ.get("MEDGATE_WORKLOAD_LOG")
    if not target:
        return
    line = {"step": request.step.value, "job_id": request.job_id, "pid": os.getpid(), "dispatch": request.dispatch}
    with Path(target).open("a") as fh:  # one short append per line: atomic on POSIX
        fh.write(json.dumps(line) + "\n")


def _maybe_fail(step: StepName) -> None:
    flag = os.environ.get("MEDGATE_WORKLOAD_FAIL_FLAG")
    if not flag or os.environ.get("MEDGATE_WORKLOAD_FAIL_STEP") != step.value or not Path(flag).exists():
        return
    if os.environ.get("MEDGATE_WORKLOAD_FAIL_MODE", "permanent") == "transient":
        raise TransientError("workload: a transient failure was asked for")
    raise WorkloadFailureError("workload: a permanent failure was asked for")


def run(request: StepRequest) -> StepResult:
    _log(request)
    _maybe_fail(request.step)
    key = f"MEDGATE_WORKLOAD_SECONDS_{request.step.value.upper()}"
    seconds = float(os.environ.get(key, os.environ.get("MEDGATE_WORKLOAD_SECONDS", "0.2")))
    cpu = burn(seconds)
    result: dict[str, Any] = {"workload_cpu_s": cpu}
    if request.step is StepName.iqa:
        result = quality_of(request).model_dump(mode="json")
    return StepResult(result=result, model=MODEL)


def quality_of(request: StepRequest) -> StudyQualityReport:
    reports = []
    for series in request.study.series:
        verdict = Verdict.reject if "REJECT" in series.series_description.upper() else Verdict.good
        reports.append(
            QualityReport(
                series_instance_uid=series.series_instance_uid,
                modality=series.modality,
                findings=(),
                statistics=QualityStatistics(noise_sigma=0.0, sharpness=0.0, contrast=0.0, clipped_fraction=0.0),
                verdict=verdict,
                reasoning=f"Workload stand-in, not an assessment. Overall, the quality of this image is {verdict}.",
                model=MODEL,
            )
        )
    rejected = [r for r in reports if r.verdict is Verdict.reject]
    return StudyQualityReport(
        study_instance_uid=request.study.study_instance_uid,
        verdict=Verdict.reject if rejected else Verdict.good,
        series=tuple(reports),
        reasons=tuple(f"series {r.series_instance_uid}: marked REJECT" for r in rejected),
    )


def register(app: Celery) -> None:
    time_limit = float(os.environ.get("MEDGATE_WORKLOAD_TIME_LIMIT", "300"))
    for step in (StepName.iqa, StepName.segmentation, StepName.reasoning):
        spec = StepSpec(step, time_limit=time_limit, soft_time_limit=time_limit - 5, backoff_s=0.5)
        step_task(app, spec)(run)
