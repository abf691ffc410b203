"""The HTTP API over real HTTP (uvicorn on loopback): uploads of real DICOM files, verdicts
with reasons, and every bad input answered with problem+json and a stable code, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from iqa_fixtures import Series, drop_pixels, modality, remake, rgb, thumbnail
from pydicom.dataset import Dataset
from shared_fixtures import dicom_parts as files
from shared_fixtures import metric, problem, serve_in_thread

from medgate_common.samples import locate
from medgate_common.schemas import StudyQualityReport, Verdict
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.main import create_app
from medgate_iqa.settings import IqaSettings

PROBLEM = "application/problem+json"
YES_NO = ["Yes", "No"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, assessor: QualityAssessor) -> Iterator[str]:
    settings = IqaSettings(home=tmp_path_factory.mktemp("home"))
    with serve_in_thread(create_app(settings, assessor=assessor)) as url:
        yield url


def series_codes(body: dict[str, object]) -> list[str]:
    details = body["details"]
    assert isinstance(details, dict)
    return [s["code"] for s in details["series"]]


# -- /v1/assess ---------------------------------------------------------------------------------


def test_a_study_of_two_series_gets_one_report_per_series_and_the_worst_verdict(
    client: httpx.Client, ct_series: Series, noisy_ct_series: Series, assessor: QualityAssessor
) -> None:
    response = client.post("/v1/assess", files=files(ct_series + noisy_ct_series))
    assert response.status_code == 200, response.text
    report = StudyQualityReport.model_validate(response.json())
    assert len(report.series) == 2 and report.not_assessable == ()
    clean, noisy = report.series
    assert noisy.verdict is Verdict.reject and report.verdict is Verdict.reject  # the study rule is "worst"
    assert [(f.attribute.value, f.severity.value) for f in noisy.findings if f.attribute.value == "noise"] == [
        ("noise", "severe")
    ]
    assert noisy.statistics.noise_sigma > 200  # measured in HU: 300 HU were added
    assert noisy.statistics.noise_sigma > clean.statistics.noise_sigma
    assert any(noisy.series_instance_uid in r and "severe noise" in r for r in report.reasons)
    assert noisy.reasoning.endswith("Overall, the quality of this image is reject.")
    assert clean.model == assessor.model.info and response.headers["x-request-id"]


@pytest.mark.parametrize(("name", "modality_name"), [("CT_small.dcm", "CT"), ("MR_small.dcm", "MR")])
def test_real_scanner_files_are_assessed(client: httpx.Client, name: str, modality_name: str) -> None:
    response = client.post("/v1/assess", files=files([locate(name).read_bytes()]))
    assert response.status_code == 200, response.text
    [series] = StudyQualityReport.model_validate(response.json()).series
    assert series.modality == modality_name and series.reasoning.startswith(f"This {modality_name} image")


def test_a_series_the_gate_cannot_judge_is_listed_beside_the_verdict(client: httpx.Client, mr_series: Series) -> None:
    colour = remake(mr_series, rgb)
    response = client.post("/v1/assess", files=files(mr_series + colour))
    assert response.status_code == 200, response.text
    report = StudyQualityReport.model_validate(response.json())
    assert [s.modality for s in report.series] == ["MR"]
    [skipped] = report.not_assessable
    assert skipped.code == "colour" and "RGB" in skipped.reason


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (drop_pixels, "no_pixel_data"),
        (thumbnail, "too_small"),
        (rgb, "colour"),
        (modality("US"), "unsupported_modality"),
        (modality("SR"), "unsupported_modality"),
    ],
    ids=["no-pixel-data", "16x16", "rgb", "ultrasound", "structured-report"],
)
def test_a_study_nothing_of_which_can_be_judged_is_422_with_the_reason(
    client: httpx.Client, ct_series: Series, change: Callable[[Dataset], None], code: str
) -> None:
    bad = remake(ct_series[:2], change)
    before = metric(client, "medgate_iqa_not_assessable_total", reason=code)
    body = problem(client.post("/v1/assess", files=files(bad)), 422, "not_assessable")
    assert series_codes(body) == [code]
    assert body["details"]["reason"] == "no_assessable_series"  # type: ignore[index]
    assert metric(client, "medgate_iqa_not_assessable_total", reason=code) == before + 1


def test_a_file_that_is_not_dicom_is_400_naming_its_position(client: httpx.Client, ct_series: Series) -> None:
    upload = [*files(ct_series[:1]), ("files", ("notes.txt", b"not an image\n" * 20, "text/plain"))]
    body = problem(client.post("/v1/assess", files=upload), 400, "invalid_dicom")
    assert body["details"] == {"part": 2}
    assert "notes" not in str(body)  # file names can carry patient names: never echoed


def test_one_request_holds_one_study(client: httpx.Client) -> None:
    two = [locate("CT_small.dcm").read_bytes(), locate("MR_small.dcm").read_bytes()]
    body = problem(client.post("/v1/assess", files=files(two)), 400, "mixed_studies")
    assert body["details"] == {"studies": 2}


def test_an_upload_over_the_limit_is_413_with_or_without_a_content_length(
    settings: IqaSettings, assessor: QualityAssessor, ct_series: Series
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 64_000})
    request = httpx.Request("POST", "http://iqa/v1/assess", files=files(ct_series))
    body = request.read()
    assert len(body) > 64_000
    with serve_in_thread(create_app(small, assessor=assessor)) as url, httpx.Client(base_url=url) as client:
        declared = problem(client.post("/v1/assess", files=files(ct_series)), 413, "payload_too_large")
        assert declared["details"] == {"limit": 64_000}

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 16_384):
                yield body[start : start + 16_384]

        streamed = client.post(
            "/v1/assess", content=chunks(), headers={"content-type": request.headers["content-type"]}
        )
        problem(streamed, 413, "payload_too_large")
        assert client.post("/v1/assess", files=files(ct_series[:1])).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"files": []}}, 415, "unsupported_media_type"),
        (
            {
                "content": b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n--b--\r\n',
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            400,
            "invalid_input",
        ),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}}, 400, "invalid_input"),
    ],
    ids=["json-body", "no-files", "multipart-without-boundary"],
)
def test_requests_without_dicom_files_are_refused_clearly(
    client: httpx.Client, kwargs: dict[str, object], status: int, code: str
) -> None:
    problem(client.post("/v1/assess", **kwargs), status, code)  # type: ignore[arg-type]


# -- /v1/perception and /v1/compare -------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False], ids=["json-list", "repeated-field"])
def test_perception_answers_a_yes_no_question_about_noise(
    client: httpx.Client, noisy_ct_series: Series, assessor: QualityAssessor, as_json: bool
) -> None:
    options: object = json.dumps(YES_NO) if as_json else YES_NO
    form = {"question": "Is there noticeable noise in this CT image?", "options": options}
    response = client.post("/v1/perception", files=files(noisy_ct_series), data=form)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["letter"], answer["option"], answer["kind"]) == ("A", "Yes", "yes-or-no")
    assert 0.5 <= answer["confidence"] <= 1.0
    assert answer["model"]["sha256"] == assessor.model.info.sha256


def test_perception_refuses_bad_questions_and_uploads(
    client: httpx.Client, ct_series: Series, noisy_ct_series: Series
) -> None:
    ok = {"question": "Is there noise?", "options": YES_NO}
    missing = client.post("/v1/perception", files=files(ct_series), data={"options": YES_NO})
    assert problem(missing, 400, "invalid_input")["details"] == {"field": "question"}
    five = {**ok, "options": json.dumps(["A", "B", "C", "D", "E"])}
    problem(client.post("/v1/perception", files=files(ct_series), data=five), 400, "invalid_input")
    not_a_list = {**ok, "options": "[not json"}
    problem(client.post("/v1/perception", files=files(ct_series), data=not_a_list), 400, "invalid_input")
    two_series = client.post("/v1/perception", files=files(ct_series + noisy_ct_series), data=ok)
    assert problem(two_series, 400, "invalid_input")["details"] == {"series": 2}
    colour = client.post("/v1/perception", files=files(remake(ct_series[:1], rgb)), data=ok)
    body = problem(colour, 422, "not_assessable")
    assert body["details"]["reason"] == "colour" and series_codes(body) == ["colour"]  # type: ignore[index]


def test_compare_prefers_the_clean_series_and_says_why(
    client: httpx.Client, ct_series: Series, noisy_ct_series: Series
) -> None:
    response = client.post("/v1/compare", files=files(ct_series, "a") + files(noisy_ct_series, "b"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["preferred"] == "A" and result["text"].endswith("Overall, image A has the higher quality.")
    assert result["b"]["verdict"] == "reject" and "noise" in result["text"]
    assert result["a"]["series_instance_uid"] != result["b"]["series_instance_uid"]


def test_compare_names_the_side_that_cannot_be_judged(client: httpx.Client, ct_series: Series) -> None:
    tiny = remake(ct_series[:1], thumbnail)
    body = problem(client.post("/v1/compare", files=files(ct_series, "a") + files(tiny, "b")), 422, "not_assessable")
    assert body["details"]["side"] == "b" and series_codes(body) == ["too_small"]  # type: ignore[index]
    problem(client.post("/v1/compare", files=files(ct_series, "a")), 400, "invalid_input")
    stray = client.post("/v1/compare", files=files(ct_series, "a") + files(ct_series, "c"))
    assert problem(stray, 400, "invalid_input")["details"] == {"fields": ["c"]}


# -- operations ---------------------------------------------------------------------------------


def test_health_readiness_and_metrics(client: httpx.Client, noisy_ct_series: Series, assessor: QualityAssessor) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": assessor.model.info.model_dump()}
    route = {"route": "/v1/assess", "method": "POST", "status": "200"}
    before = metric(client, "medgate_iqa_requests_total", **route)
    before_reject = metric(client, "medgate_iqa_verdicts_total", modality="CT", verdict="reject")
    before_latency = metric(client, "medgate_iqa_request_seconds_count", route="/v1/assess")
    assert client.post("/v1/assess", files=files(noisy_ct_series)).status_code == 200
    assert metric(client, "medgate_iqa_requests_total", **route) == before + 1
    assert metric(client, "medgate_iqa_verdicts_total", modality="CT", verdict="reject") == before_reject + 1
    assert metric(client, "medgate_iqa_request_seconds_count", route="/v1/assess") == before_latency + 1


def test_unknown_paths_and_methods_are_problems_too(client: httpx.Client) -> None:
    problem(client.get("/v1/nothing"), 404, "not_found")
    problem(client.get("/v1/assess"), 405, "method_not_allowed")
    assert metric(client, "medgate_iqa_requests_total", route="unmatched", method="GET", status="404") >= 1


def test_a_request_id_from_the_caller_is_kept_and_a_bad_one_replaced(client: httpx.Client) -> None:
    assert client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    replaced = client.get("/healthz", headers={"x-request-id": "no spaces/allowed"}).headers["x-request-id"]
    assert len(replaced) == 32 and " " not in replaced


def test_the_openapi_document_describes_the_uploads(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/assess", "/v1/perception", "/v1/compare"):
        body = paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert body["required"]
        assert {"413", "422"} <= set(paths[path]["post"]["responses"])
