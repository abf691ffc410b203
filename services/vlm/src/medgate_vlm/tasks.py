"""Celery task ``vlm.reason`` of the workflow (queue ``vlm``).

The step runs after ``seg.segment``: the gateway hands it the quality gate's
:class:`StudyQualityReport` and segmentation's :class:`StudySegmentation`
(``StepRequest.upstream``). For each routed series it reads the instances and the series' SEG
from storage, scores the study for triage, asks the standard questions on the key slice, and
leaves in its output folder, per series, ``<series uid>/report.dcm`` (the TID 1500 SR, which
references the SEG), ``<series uid>/key-*.dcm`` and ``heatmap-*.dcm`` (Secondary Captures), and
``reasoning.json`` (the :class:`StudyReasoning`, also the step's result). The gateway's
assembly indexes the DICOM objects into the study. Policy:

* no grounded VQA model installed: ``not_installed`` (the model is the report's author; no
  report is drafted without it). No triage model: reports are drafted, triage is named
  unavailable with the reason;
* a series the gate rejected (``quality_rejected``), one with no segmentation result
  (``missing_segmentation``: not routed to segmentation, not segmentable, or no lesion model
  for its modality) or one that cannot be read is listed in ``not_reasoned`` with its code
  and reason, and the step is done: like segmentation, reasoning assists the reader and the
  gate is what stops a study, so the study still reaches review with the reason shown;
* a request with no series at all fails with ``empty_study`` (the gateway never sends one);
* the objects' UIDs derive from the request (job, run, dispatch, series), so a redelivered
  task writes the same objects again.

The models are loaded once per worker process, on its first task (after the fork).
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import Celery
from pydicom.dataset import Dataset

from medgate_common.dicom.io import read_dataset
from medgate_common.errors import InputError
from medgate_common.schemas.quality import NotAssessable, QualityReport, StudyQualityReport, Verdict
from medgate_common.schemas.reasoning import ReasoningResult, StudyReasoning
from medgate_common.schemas.segmentation import SegmentationResult, StudySegmentation
from medgate_common.schemas.study import SeriesRef
from medgate_common.schemas.workflow import Artifact, StepName, StepRequest, StepResult
from medgate_common.tasking import PerProcess, StepSpec, StoredStep, step_task
from medgate_vlm.core import vqa
from medgate_vlm.core.report import Uids
from medgate_vlm.core.study import EmptyStudyError, MissingSegmentationError, QualityRejectedError, read_series
from medgate_vlm.outputs import write_report
from medgate_vlm.runtime import Models, load_models, vqa_present
from medgate_vlm.settings import VlmSettings

log = logging.getLogger(__name__)

SPEC = StepSpec(StepName.reasoning)
RESULT_NAME = "reasoning.json"


def _refusal(series: SeriesRef, exc: InputError) -> NotAssessable:
    return NotAssessable(
        series_instance_uid=series.series_instance_uid, modality=series.modality, code=exc.code, reason=exc.message
    )


def _quality_of(report: StudyQualityReport | None, series_uid: str) -> QualityReport | None:
    """The gate's report on one series; a study the gate rejected rejects each of its series."""
    if report is None:
        return None
    found = next((s for s in report.series if s.series_instance_uid == series_uid), None)
    if report.verdict is Verdict.reject and (found is None or found.verdict is not Verdict.reject):
        reasons = "; ".join(report.reasons) or "the study's image quality is below the gate"
        raise QualityRejectedError(f"the quality gate rejected the study: {reasons}")
    return found


def _segmentation_of(study: StudySegmentation | None, series: SeriesRef) -> SegmentationResult:
    if study is None:
        raise MissingSegmentationError("segmentation gave no result for this study (not run or not installed)")
    found = next((s for s in study.series if s.series_instance_uid == series.series_instance_uid), None)
    if found is not None:
        return found
    why = next((s for s in study.not_segmented if s.series_instance_uid == series.series_instance_uid), None)
    reason = f"segmentation did not segment it ({why.code}: {why.reason})" if why else "segmentation did not see it"
    raise MissingSegmentationError(f"no segmentation result for this series: {reason}")


class ReasonStep(StoredStep[VlmSettings]):
    """The step with its storage and models; both are made on first use."""

    def __init__(self, settings: VlmSettings, models: Models | None = None, *, packaged: Path | None = None) -> None:
        super().__init__(settings)
        self._models = models
        self.packaged = packaged or vqa.package_weights_dir()

    @property
    def models(self) -> Models:
        if self._models is None:
            self._models = load_models(self.settings, packaged=self.packaged)
        return self._models

    def installed(self) -> bool:
        """False when no VQA weights were configured and the package ships none (a declared
        no-op); a configured folder without a usable model is an error."""
        return self._models is not None or self.settings.weights is not None or vqa_present(self.packaged)

    def run(self, request: StepRequest) -> StepResult:
        if not self.installed():
            return StepResult.not_installed(
                "no grounded VQA model is installed (medgate_vlm/weights has no vqa.onnx): no triage, answers "
                "or draft report"
            )
        if not request.study.series:
            raise EmptyStudyError("the step was sent no series to report on")
        models = self.models
        if models.reasoner is None:
            return StepResult.not_installed(models.vqa_note)
        reasoner = models.reasoner
        gate = request.upstream(StepName.iqa)
        quality = StudyQualityReport.model_validate(gate) if gate is not None else None
        found = request.upstream(StepName.segmentation)
        segmentation = StudySegmentation.model_validate(found) if found is not None else None
        storage = self.storage
        folder = self.output_folder(request)
        results: list[ReasoningResult] = []
        refused: list[NotAssessable] = []
        artifacts: list[Artifact] = []
        for series in request.study.series:
            try:
                series_quality = _quality_of(quality, series.series_instance_uid)
                segmented = _segmentation_of(segmentation, series)
                source = read_series([read_dataset(storage.get_bytes(uri)) for uri in series.instance_uris])
                seg: Dataset | None = read_dataset(storage.get_bytes(segmented.seg_uri)) if segmented.seg_uri else None
                uids = Uids.derived(request.job_id, str(request.run), str(request.dispatch), series.series_instance_uid)
                report = reasoner.report(
                    source, seg, segmented.lesions, series_quality, uids, segmentation_model=segmented.model
                )
            except InputError as exc:
                refused.append(_refusal(series, exc))
                log.info("series not reported on", extra={"job_id": request.job_id, "code": exc.code})
                continue
            written = write_report(
                storage,
                f"{folder}/{series.series_instance_uid}",
                request.study.study_instance_uid,
                series.series_instance_uid,
                report,
                reasoner,
            )
            results.append(written.result)
            artifacts.extend(written.artifacts)
        study = StudyReasoning(
            study_instance_uid=request.study.study_instance_uid, series=tuple(results), not_reasoned=tuple(refused)
        )
        summary = self.put_json(folder, RESULT_NAME, study, "draft reports per series")
        log.info(
            "study reasoned",
            extra={"job_id": request.job_id, "series": len(results), "not_reasoned": len(refused)},
        )
        return StepResult(
            result=study.model_dump(mode="json"), artifacts=(summary, *artifacts), model=reasoner.vqa_info
        )


_WORKER = PerProcess(lambda: ReasonStep(VlmSettings()))


def run(request: StepRequest) -> StepResult:
    """``vlm.reason`` in a worker: the process's step, configured by ``MEDGATE_*``."""
    return _WORKER.get().run(request)


def register(app: Celery, step: ReasonStep | None = None) -> None:
    """The ``medgate.tasks`` entry point; ``step`` replaces the environment's (tests)."""
    step_task(app, SPEC)(step.run if step is not None else run)
