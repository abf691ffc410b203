"""The workflow step ``vlm.reason``: instances and the SEG read from a real store, the gate's and
segmentation's results handed over by the gateway (``StepRequest.upstream``), one draft report
per series with its SR and key images as artifacts, refused series named with their code, and
a declared ``not_installed`` while the VQA model is missing.

The wrapper runs through Celery's ``apply`` and publishes its events through the embedded
broker (a SQLite file in tmp_path), as the seg step's tests do. The VQA model is the stand-in
of vlm_service_fixtures, whose answers are known in advance; the trained model runs the step
in tests/e2e/test_vlm_step.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from celery import Celery
from shared_fixtures import drain_step_events, step_app, step_request, store_study
from vlm_fixtures import SegmentedStudy
from vlm_service_fixtures import models, quality, study_segmentation, triage_model_dir

from medgate_common.errors import ModelError
from medgate_common.schemas import StudyRef, StudySegmentation
from medgate_common.schemas.quality import Verdict
from medgate_common.schemas.reasoning import StudyReasoning
from medgate_common.schemas.workflow import StepEventKind, StepName, StepRequest
from medgate_common.storage import LocalStorage, storage_from_uri
from medgate_vlm import tasks
from medgate_vlm.core.pipeline import STANDARD_QUESTIONS
from medgate_vlm.core.study import EmptyStudyError
from medgate_vlm.settings import VlmSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path) -> VlmSettings:
    return VlmSettings(home=tmp_path / "home")


@pytest.fixture
def storage(settings: VlmSettings) -> LocalStorage:
    return storage_from_uri(settings.resolved_storage_uri())


@pytest.fixture(scope="module")
def triage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return triage_model_dir(tmp_path_factory.mktemp("triage"))


@pytest.fixture
def step(settings: VlmSettings, triage_dir: Path) -> tasks.ReasonStep:
    return tasks.ReasonStep(settings, models(triage_dir))


def instances(small_ct: tuple[object, Path]) -> list[bytes]:
    return [p.read_bytes() for p in sorted((small_ct[1] / "dicom").glob("*.dcm"))]


def request_for(
    storage: LocalStorage, study: StudyRef, upstream: dict[str, object] | None = None, dispatch: int = 1
) -> StepRequest:
    return step_request(storage, StepName.reasoning, study, dispatch=dispatch, upstream=upstream or {})


def handed(segmented: SegmentedStudy, storage: LocalStorage, verdict: Verdict = Verdict.good) -> dict[str, object]:
    return {
        "iqa": quality(segmented, verdict).model_dump(mode="json"),
        "segmentation": study_segmentation(segmented, storage).model_dump(mode="json"),
    }


def test_the_step_drafts_a_report_with_sr_and_key_images_that_reference_the_seg(
    step: tasks.ReasonStep, storage: LocalStorage, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    request = request_for(storage, store_study(storage, instances(small_ct)), handed(segmented, storage))
    outcome = step.run(request)
    assert outcome.installed and outcome.model is not None and outcome.model.name == "medgate-vqa"
    result = StudyReasoning.model_validate(outcome.result)
    [report] = result.series
    assert result.not_reasoned == () and report.triage is not None
    assert all(s.evidence for s in report.statements) and "Image quality good" in report.findings_text
    media = [(a.uri, a.media_type) for a in outcome.artifacts]
    assert media[0] == (request.output_prefix + "/reasoning.json", "application/json")
    assert json.loads(storage.get_bytes(media[0][0])) == outcome.result
    dicom = [uri for uri, kind in media if kind == "application/dicom"]
    assert dicom[0] == report.sr_uri and dicom[1:] == list(report.key_image_uris)
    assert report.sr_uri.endswith(f"/{report.series_instance_uid}/report.dcm")
    sr = pydicom.dcmread(io.BytesIO(storage.get_bytes(report.sr_uri)))
    evidence = {
        item.ReferencedSOPInstanceUID
        for series in sr.CurrentRequestedProcedureEvidenceSequence
        for ref in series.ReferencedSeriesSequence
        for item in ref.ReferencedSOPSequence
    }
    assert segmented.seg.SOPInstanceUID in evidence  # the SR references the SEG segmentation wrote
    # the standard questions were asked on the key slice
    reasoner = step.models.reasoner
    assert reasoner is not None
    calls = reasoner.vqa.calls  # type: ignore[attr-defined]  # the stand-in records them
    assert [q for q, _ in calls] == [q for _, q in STANDARD_QUESTIONS]
    area = segmented.labels.reshape(len(segmented.labels), -1).astype(bool).sum(axis=1)
    assert {z for _, z in calls} == {int(area.argmax())}
    # a redelivered request writes the same SR object again
    again = StudyReasoning.model_validate(step.run(request).result)
    assert (
        pydicom.dcmread(io.BytesIO(storage.get_bytes(again.series[0].sr_uri or ""))).SOPInstanceUID == sr.SOPInstanceUID
    )


def test_refused_series_are_named_with_their_code_and_the_step_is_done(
    step: tasks.ReasonStep, storage: LocalStorage, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    study = store_study(storage, instances(small_ct))
    rejected = StudyReasoning.model_validate(
        step.run(request_for(storage, study, handed(segmented, storage, Verdict.reject))).result
    )
    assert rejected.series == () and [s.code for s in rejected.not_reasoned] == ["quality_rejected"]
    no_seg = StudyReasoning.model_validate(step.run(request_for(storage, study, {})).result)
    assert [s.code for s in no_seg.not_reasoned] == ["missing_segmentation"]
    unsegmented = StudySegmentation.model_validate(
        {
            "study_instance_uid": study.study_instance_uid,
            "series": [],
            "not_segmented": [
                {
                    "series_instance_uid": study.series[0].series_instance_uid,
                    "code": "single_slice",
                    "reason": "one slice",
                }
            ],
        }
    )
    named = step.run(request_for(storage, study, {"segmentation": unsegmented.model_dump(mode="json")}))
    [why] = StudyReasoning.model_validate(named.result).not_reasoned
    assert why.code == "missing_segmentation" and "single_slice" in why.reason
    with pytest.raises(EmptyStudyError):
        step.run(request_for(storage, StudyRef(study_instance_uid=study.study_instance_uid, series=())))


def test_without_vqa_weights_the_step_is_not_installed_but_a_bad_configured_folder_is_an_error(
    tmp_path: Path, storage: LocalStorage, small_ct: tuple[object, Path]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    request = request_for(storage, store_study(storage, instances(small_ct)))
    outcome = tasks.ReasonStep(VlmSettings(home=tmp_path / "h"), packaged=empty).run(request)
    assert not outcome.installed and "VQA" in outcome.note
    with pytest.raises(ModelError):
        tasks.ReasonStep(VlmSettings(home=tmp_path / "h", weights=tmp_path / "nothing")).run(request)


@pytest.fixture
def app(settings: VlmSettings, step: tasks.ReasonStep) -> Iterator[Celery]:
    with step_app(settings, tasks.register, step) as celery:
        yield celery


def test_the_celery_task_reports_done_with_the_reports(
    app: Celery, storage: LocalStorage, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    task = app.tasks["vlm.reason"]
    assert task.name == StepName.reasoning.task and task.acks_late
    request = request_for(storage, store_study(storage, instances(small_ct)), handed(segmented, storage))
    task.apply(args=[request.model_dump(mode="json")])
    started, done = drain_step_events(app)
    assert (started.kind, done.kind) == (StepEventKind.started, StepEventKind.done)
    assert len(StudyReasoning.model_validate(done.result).series) == 1
    assert done.artifacts[0].uri == request.output_prefix + "/reasoning.json"
    empty = request_for(storage, StudyRef(study_instance_uid=request.study.study_instance_uid, series=()))
    task.apply(args=[empty.model_dump(mode="json")])
    _, failed = drain_step_events(app)
    assert failed.kind is StepEventKind.failed and failed.error_code == "empty_study" and failed.attempt == 1
