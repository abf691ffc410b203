"""Celery task ``seg.segment`` of the workflow (queue ``segmentation``).

The step reads the instances of each series routed to it from storage, segments the
series the model was made for, and leaves in its output folder ``lesions.json`` (the
:class:`StudySegmentation`, also the step's result) and, per series with a lesion,
``<series uid>/seg.dcm`` (indexed into the study by the gateway's assembly) and the review
PNGs. Policy:

* a series of a modality the model does not take (MR for a CT model) is listed in
  ``not_segmented`` without reading its pixels; if no routed series is of a supported
  modality the step reports ``not_installed`` (no lesion model for that modality is part of
  this installation), so an MR study is not failed for it;
* a series that cannot be segmented (a single slice, missing slices, a gantry tilt, ...) is
  listed in ``not_segmented`` with its code and reason, and the step is done. That holds
  even when no series could be segmented: segmentation assists the reader, it does not
  gate the study (the quality gate does), so a study the model cannot take still reaches
  review, where the reasons are shown instead of lesions. The input will not change on a
  retry, so failing the job would only keep the study from its reader;
* no weights in the package and none configured: ``not_installed``, as before the model came;
* the SEG's UIDs derive from the request (job, run, dispatch, series), so a redelivered
  task writes the same object again.

The model is loaded once per worker process, on its first task (after the fork, so pool
processes do not share an ONNX Runtime session).
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import Celery

from medgate_common.dicom.io import read_dataset
from medgate_common.errors import InputError
from medgate_common.schemas.quality import NotAssessable
from medgate_common.schemas.segmentation import SegmentationResult, StudySegmentation
from medgate_common.schemas.study import SeriesRef
from medgate_common.schemas.workflow import Artifact, StepName, StepRequest, StepResult
from medgate_common.tasking import PerProcess, StepSpec, StoredStep, step_task
from medgate_seg.core.dicom_seg import SegIdentity
from medgate_seg.core.model import model_present, weights_dir
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.outputs import write_outputs
from medgate_seg.runtime import build_segmenter
from medgate_seg.settings import SegSettings

log = logging.getLogger(__name__)

SPEC = StepSpec(StepName.segmentation)
RESULT_NAME = "lesions.json"


def _refusal(series: SeriesRef, exc: InputError) -> NotAssessable:
    code = str(exc.details.get("reason", exc.code))
    return NotAssessable(
        series_instance_uid=series.series_instance_uid, modality=series.modality, code=code, reason=exc.message
    )


class SegmentStep(StoredStep[SegSettings]):
    """The step with its storage and segmenter; both are made on first use."""

    def __init__(
        self, settings: SegSettings, segmenter: Segmenter | None = None, *, packaged: Path | None = None
    ) -> None:
        super().__init__(settings)
        self._segmenter = segmenter
        self.packaged = packaged or weights_dir()

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = build_segmenter(self.settings)
        return self._segmenter

    def installed(self) -> bool:
        """False only when no weights were configured and the package ships none: then the
        step is a declared no-op. A configured folder without a usable model is an error."""
        return self._segmenter is not None or self.settings.weights is not None or model_present(self.packaged)

    def run(self, request: StepRequest) -> StepResult:
        if not self.installed():
            return StepResult.not_installed("no lesion segmentation model is installed (medgate_seg/weights is empty)")
        supported = {m.upper() for m in self.segmenter.model.card.modalities}
        wanted = [s for s in request.study.series if s.modality.upper() in supported]
        skipped = [
            NotAssessable(
                series_instance_uid=s.series_instance_uid,
                modality=s.modality,
                code="unsupported_modality",
                reason=f"the lesion model segments {' and '.join(sorted(supported))} images, not {s.modality}",
            )
            for s in request.study.series
            if s.modality.upper() not in supported
        ]
        if not wanted:
            modalities = ", ".join(sorted({s.modality for s in request.study.series})) or "no series"
            return StepResult.not_installed(f"no lesion segmentation model for {modalities} is installed")
        storage = self.storage
        folder = self.output_folder(request)
        results: list[SegmentationResult] = []
        artifacts: list[Artifact] = []
        for series in wanted:
            try:
                datasets = [read_dataset(storage.get_bytes(uri)) for uri in series.instance_uris]
                segmentation = self.segmenter.segment(datasets)
            except InputError as exc:
                skipped.append(_refusal(series, exc))
                log.info("series not segmented", extra={"job_id": request.job_id, "code": exc.code})
                continue
            identity = SegIdentity.derived(
                request.job_id, str(request.run), str(request.dispatch), series.series_instance_uid
            )
            written = write_outputs(
                storage, f"{folder}/{series.series_instance_uid}", segmentation, self.segmenter, identity
            )
            results.append(written.result)
            artifacts.extend(written.artifacts)
        study = StudySegmentation(
            study_instance_uid=request.study.study_instance_uid, series=tuple(results), not_segmented=tuple(skipped)
        )
        report = self.put_json(folder, RESULT_NAME, study, "lesions per series")
        log.info(
            "study segmented",
            extra={
                "job_id": request.job_id,
                "series": len(results),
                "lesions": sum(len(r.lesions) for r in results),
                "not_segmented": len(skipped),
            },
        )
        return StepResult(
            result=study.model_dump(mode="json"),
            artifacts=(report, *artifacts),
            model=self.segmenter.model.backend.info,
        )


_WORKER = PerProcess(lambda: SegmentStep(SegSettings()))


def run(request: StepRequest) -> StepResult:
    """``seg.segment`` in a worker: the process's step, configured by ``MEDGATE_*``."""
    return _WORKER.get().run(request)


def register(app: Celery, step: SegmentStep | None = None) -> None:
    """The ``medgate.tasks`` entry point; ``step`` replaces the environment's (tests)."""
    step_task(app, SPEC)(step.run if step is not None else run)
