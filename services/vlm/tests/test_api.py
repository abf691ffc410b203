"""The HTTP API over real HTTP (uvicorn on loopback) with real DICOM files (the synthetic CT and
the SEG the seg service writes for it): a draft report with its SR and key images, a triage
score, grounded answers with their heatmap, and every bad input answered with problem+json and
a stable code. Most tests answer with a stand-in VQA model (vlm_service_fixtures.StandInVqa)
so that they can assert exact answers and evidence; the triage model there is a real ONNX file
in the FL export format, built with a known answer. The last test serves the packaged models
(the trained grounded VQA model and the released triage classifier) over the same HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage
from shared_fixtures import dicom_parts, metric, problem, serve_in_thread, store_study
from vlm_fixtures import SegmentedStudy
from vlm_service_fixtures import models, quality, seg_bytes, segmentation, triage_model_dir

from medgate_common.schemas.quality import Verdict
from medgate_common.schemas.reasoning import ReasoningResult
from medgate_common.storage import storage_from_uri
from medgate_vlm.api.schemas import TriageAnswer, VqaAnswer
from medgate_vlm.core.vqa import CANNOT_ANSWER
from medgate_vlm.main import create_app
from medgate_vlm.runtime import Models, load_models
from medgate_vlm.settings import VlmSettings

pytestmark = pytest.mark.integration

Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> VlmSettings:
    return VlmSettings(home=tmp_path_factory.mktemp("home"), max_upload_bytes=16 << 20, max_instances=64)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, settings: VlmSettings) -> Iterator[str]:
    loaded = models(triage_model_dir(tmp_path_factory.mktemp("triage")))
    with serve_in_thread(create_app(settings, models=loaded)) as url:
        yield url


def series_bytes(small_ct: tuple[object, Path]) -> list[bytes]:
    return [p.read_bytes() for p in sorted((small_ct[1] / "dicom").glob("*.dcm"))]


def files(instances: list[bytes], seg: bytes | None = None) -> Files:
    return dicom_parts(instances) + ([("files", ("seg.dcm", seg, "application/dicom"))] if seg is not None else [])


def report_form(study: SegmentedStudy, verdict: Verdict = Verdict.good) -> dict[str, str]:
    return {
        "segmentation": segmentation(study).model_dump_json(),
        "quality": quality(study, verdict).series[0].model_dump_json(),
    }


def test_a_report_is_drafted_with_its_sr_and_key_images(
    client: httpx.Client, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    before = metric(client, "medgate_vlm_reports_total", outcome="drafted")
    response = client.post(
        "/v1/report", files=files(series_bytes(small_ct), seg_bytes(segmented)), data=report_form(segmented)
    )
    assert response.status_code == 200, response.text
    result = ReasoningResult.model_validate(response.json())
    assert result.statements and all(s.evidence for s in result.statements)
    for lesion in segmented.lesions:
        assert f"{lesion.volume_ml:.2f} mL" in result.findings_text and str(lesion.organ) in result.findings_text
    assert result.triage is not None and result.triage.model.name == "medgate-fl-triage"
    assert "Triage" in result.impression_text
    assert [a.question for a in result.answers][:1] == ["Is there a lesion in this image?"]
    assert len(result.key_image_uris) == len(segmented.lesions) + len(result.answers)
    location = response.headers["location"]
    assert ReasoningResult.model_validate(client.get(location).json()) == result
    sr = client.get(f"{location}/report.dcm")
    assert sr.status_code == 200 and sr.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(sr.content))
    assert ds.SOPClassUID == Comprehensive3DSRStorage and ds.StudyInstanceUID == segmented.seg.StudyInstanceUID
    key = client.get(f"{location}/key-lesion-1.dcm")
    assert pydicom.dcmread(io.BytesIO(key.content)).BurnedInAnnotation == "YES"
    problem(client.get(f"{location}/key-lesion-99.dcm"), 404, "not_found")
    assert client.get(f"{location}/passwd").status_code == 422  # only the report's own file names
    assert metric(client, "medgate_vlm_reports_total", outcome="drafted") == before + 1


def test_a_study_reference_in_the_shared_store_works_like_an_upload(
    client: httpx.Client, settings: VlmSettings, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    storage = storage_from_uri(settings.resolved_storage_uri())
    study = store_study(storage, series_bytes(small_ct))
    form = {
        "study": study.model_dump_json(),
        "segmentation": segmentation(segmented, storage).model_dump_json(),  # its SEG named by seg_uri
    }
    response = client.post("/v1/report", data=form, files={"none": ("", b"", "text/plain")})
    assert response.status_code == 200, response.text
    result = ReasoningResult.model_validate(response.json())
    assert "Image quality" not in result.findings_text  # no gate report sent: nothing said about it
    assert len(result.key_image_uris) >= len(segmented.lesions)


def test_triage_scores_the_key_slice(
    client: httpx.Client, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    plain = client.post("/v1/triage", files=files(series_bytes(small_ct)))
    assert plain.status_code == 200, plain.text
    middle = TriageAnswer.model_validate(plain.json())
    assert middle.slice.index == len(segmented.labels) // 2 and "middle" in middle.slice.reason
    form = {"segmentation": segmentation(segmented).model_dump_json()}
    keyed = client.post("/v1/triage", files=files(series_bytes(small_ct), seg_bytes(segmented)), data=form)
    key = TriageAnswer.model_validate(keyed.json())
    assert "largest lesion area" in key.slice.reason and 0.0 <= key.triage.score <= 1.0
    asked = client.post("/v1/triage", files=files(series_bytes(small_ct)), data={"instance_number": "3"})
    assert TriageAnswer.model_validate(asked.json()).slice.instance_number == 3


def test_vqa_answers_with_a_heatmap_or_says_it_cannot_answer(
    client: httpx.Client, small_ct: tuple[object, Path]
) -> None:
    response = client.post("/v1/vqa", files=files(series_bytes(small_ct)), data={"question": "Where is the lesion?"})
    assert response.status_code == 200, response.text
    answer = VqaAnswer.model_validate(response.json())
    assert answer.answerable and answer.answer.answer == "liver" and answer.intent == "location"
    assert answer.heatmap_uri is not None
    png = client.get(answer.heatmap_uri)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    out = client.post("/v1/vqa", files=files(series_bytes(small_ct)), data={"question": "Is there a fracture?"})
    refused = VqaAnswer.model_validate(out.json())
    assert not refused.answerable and refused.answer.answer == CANNOT_ANSWER and refused.heatmap_uri is None
    problem(client.post("/v1/vqa", files=files(series_bytes(small_ct))), 400, "invalid_input")
    problem(client.get("/v1/answers/" + "0" * 32 + "/heatmap.png"), 404, "not_found")


def test_bad_input_gets_a_coded_problem(
    client: httpx.Client, settings: VlmSettings, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    instances = series_bytes(small_ct)
    problem(
        client.post("/v1/report", data={"question": "x"}, files={"none": ("", b"", "text/plain")}), 422, "empty_study"
    )
    body = problem(
        client.post(
            "/v1/report", files=files(instances, seg_bytes(segmented)), data=report_form(segmented, Verdict.reject)
        ),
        422,
        "quality_rejected",
    )
    assert "rejected" in body["detail"]
    problem(client.post("/v1/report", files=files(instances, seg_bytes(segmented))), 422, "missing_segmentation")
    # lesions, but their SEG was not sent
    problem(client.post("/v1/report", files=files(instances), data=report_form(segmented)), 422, "missing_segmentation")
    # the SEG it names is not in the store
    gone = segmentation(segmented).model_copy(
        update={"seg_uri": storage_from_uri(settings.resolved_storage_uri()).uri_for("seg/gone.dcm")}
    )
    problem(
        client.post("/v1/report", files=files(instances), data={"segmentation": gone.model_dump_json()}),
        422,
        "missing_segmentation",
    )
    problem(client.post("/v1/report", files=files([b"not dicom"])), 400, "invalid_dicom")
    problem(
        client.post("/v1/report", content=b"{}", headers={"content-type": "application/json"}),
        415,
        "unsupported_media_type",
    )
    problem(
        client.post("/v1/report", files=files(instances, seg_bytes(segmented)), data={"segmentation": "{"}),
        400,
        "invalid_input",
    )


def test_without_the_vqa_model_the_service_says_so(
    tmp_path: Path, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    empty = Models(None, "the grounded VQA model is not installed (test)", None, "no triage model is installed (test)")
    with (
        serve_in_thread(create_app(VlmSettings(home=tmp_path), models=empty)) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/healthz").json() == {"status": "ok"}
        assert "VQA" in problem(http.get("/readyz"), 503, "not_ready")["detail"]
        instances = series_bytes(small_ct)
        assert (
            "VQA"
            in problem(http.post("/v1/vqa", files=files(instances), data={"question": "q"}), 503, "not_ready")["detail"]
        )
        problem(http.post("/v1/report", files=files(instances), data=report_form(segmented)), 503, "not_ready")
        assert "triage" in problem(http.post("/v1/triage", files=files(instances)), 503, "not_ready")["detail"]


@pytest.fixture(scope="module")
def packaged(settings: VlmSettings) -> Iterator[httpx.Client]:
    """The service as deployed: the packaged weights, loaded the way the app loads them."""
    with (
        serve_in_thread(create_app(settings, models=load_models(settings))) as url,
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        yield http


def test_the_packaged_models_serve_over_http(
    packaged: httpx.Client, segmented: SegmentedStudy, small_ct: tuple[object, Path]
) -> None:
    assert packaged.get("/readyz").status_code == 200
    asked = packaged.post(
        "/v1/vqa", files=files(series_bytes(small_ct)), data={"question": "Which organ is the largest on this image?"}
    )
    assert asked.status_code == 200, asked.text
    answer = VqaAnswer.model_validate(asked.json())
    assert answer.answerable and answer.intent == "largest_organ" and answer.heatmap_uri is not None
    assert answer.answer.rationale.endswith(f"<answer>{answer.answer.answer}</answer>")
    refused = VqaAnswer.model_validate(
        packaged.post("/v1/vqa", files=files(series_bytes(small_ct)), data={"question": "Is there ascites?"}).json()
    )
    assert not refused.answerable and refused.answer.answer == CANNOT_ANSWER
    long = "Given the clinical history of weight loss, abdominal pain and abnormal liver function tests, " * 2
    problem(
        packaged.post("/v1/vqa", files=files(series_bytes(small_ct)), data={"question": long + "is there a lesion?"}),
        422,
        "model_input_mismatch",
    )
    report = packaged.post(
        "/v1/report", files=files(series_bytes(small_ct), seg_bytes(segmented)), data=report_form(segmented)
    )
    assert report.status_code == 200, report.text
    result = ReasoningResult.model_validate(report.json())
    assert result.statements and all(s.evidence for s in result.statements)
    assert result.triage is not None and 0.0 <= result.triage.score <= 1.0
