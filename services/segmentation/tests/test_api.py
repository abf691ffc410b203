"""The HTTP API over real HTTP (uvicorn on loopback) with the stand-in model: uploads of real
DICOM files (or a zip of them), the lesion list, the SEG and overlays fetched afterwards,
and every bad input answered with problem+json and a stable code, never a 500."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import highdicom as hd
import httpx
import pytest
from seg_fixtures import Series, as_modality, remake, tilt
from shared_fixtures import dicom_parts as files
from shared_fixtures import metric, problem, serve_in_thread

from medgate_common.schemas.segmentation import SegmentationResult
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.main import create_app
from medgate_seg.settings import SegSettings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, segmenter: Segmenter) -> Iterator[str]:
    settings = SegSettings(home=tmp_path_factory.mktemp("home"), max_upload_bytes=2 << 20, max_instances=64)
    with serve_in_thread(create_app(settings, segmenter=segmenter)) as url:
        yield url


def zipped(series: Series) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/DICOMDIR", b"not an image")
        for i, data in enumerate(series):
            archive.writestr(f"export/IM{i:04d}", data)
    return buffer.getvalue()


def test_a_series_is_segmented_and_its_seg_and_overlays_can_be_fetched(
    client: httpx.Client, phantom_series: Series
) -> None:
    before = metric(client, "medgate_seg_series_total", outcome="lesions")
    response = client.post("/v1/segment", files=files(phantom_series))
    assert response.status_code == 200, response.text
    result = SegmentationResult.model_validate(response.json())
    assert [lesion.lesion_id for lesion in result.lesions] == [1, 2]
    assert result.model.name == "bright-spot" and result.seg_uri and len(result.overlay_uris) == 2
    location = response.headers["location"]
    assert SegmentationResult.model_validate(client.get(location).json()) == result
    seg = client.get(f"{location}/seg.dcm")
    assert seg.status_code == 200 and seg.headers["content-type"] == "application/dicom"
    read = hd.seg.segread(io.BytesIO(seg.content))
    assert read.number_of_segments == 2 and read.SeriesDescription.startswith("AI lesion segmentation")
    name = result.overlay_uris[0].rsplit("/", 1)[1]
    png = client.get(f"{location}/{name}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert metric(client, "medgate_seg_series_total", outcome="lesions") == before + 1


def test_a_zip_of_the_series_is_the_same_upload(client: httpx.Client, phantom_series: Series) -> None:
    response = client.post("/v1/segment", files=[("files", ("study.zip", zipped(phantom_series), "application/zip"))])
    assert response.status_code == 200, response.text
    assert len(response.json()["lesions"]) == 2


def test_bad_series_are_422_with_the_reason(client: httpx.Client, phantom_series: Series) -> None:
    tilted = problem(
        client.post("/v1/segment", files=files(remake(phantom_series, tilt(12.0)))), 422, "inconsistent_geometry"
    )
    assert tilted["details"]["reason"] == "gantry_tilt"  # type: ignore[index]
    holed = problem(
        client.post("/v1/segment", files=files(phantom_series[:5] + phantom_series[6:])), 422, "inconsistent_geometry"
    )
    assert holed["details"]["reason"] == "missing_slices"  # type: ignore[index]
    problem(client.post("/v1/segment", files=files(phantom_series[:1])), 422, "inconsistent_geometry")
    problem(client.post("/v1/segment", files=files(remake(phantom_series[:2], as_modality("SR")))), 422, "not_an_image")
    problem(
        client.post("/v1/segment", files=files(remake(phantom_series, as_modality("MR")))), 422, "unsupported_modality"
    )
    assert metric(client, "medgate_seg_series_total", outcome="gantry_tilt") >= 1


def test_uploads_that_are_not_one_series_of_dicom_are_refused(client: httpx.Client, phantom_series: Series) -> None:
    body = problem(client.post("/v1/segment", files=files([phantom_series[0], b"plain text"])), 400, "invalid_dicom")
    assert str(body["detail"]).startswith("file 2:")
    problem(
        client.post("/v1/segment", files=files(phantom_series + remake(phantom_series[:2], as_modality("CT")))),
        400,
        "invalid_input",
    )
    problem(
        client.post("/v1/segment", files=[("files", ("x.zip", b"PK\x03\x04broken", "application/zip"))]),
        400,
        "invalid_dicom",
    )
    problem(
        client.post("/v1/segment", content=b"x", headers={"content-type": "application/dicom"}),
        415,
        "unsupported_media_type",
    )
    problem(client.post("/v1/segment", files=files([b"\0" * (3 << 20)])), 413, "payload_too_large")
    assert "Too many files" in str(
        problem(client.post("/v1/segment", files=files(phantom_series * 3)), 400, "invalid_input")["detail"]
    )


def test_a_zip_that_unpacks_beyond_the_limit_is_413(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big", b"\0" * (3 << 20))  # 3 MiB of zeros: a few kB packed, over the 2 MiB limit
    body = problem(
        client.post("/v1/segment", files=[("files", ("b.zip", buffer.getvalue(), "application/zip"))]),
        413,
        "payload_too_large",
    )
    assert "unpacks" in str(body["detail"])


def test_unknown_results_and_files_are_404(client: httpx.Client) -> None:
    problem(client.get("/v1/segmentations/" + "0" * 32), 404, "not_found")
    problem(client.get("/v1/segmentations/" + "0" * 32 + "/seg.dcm"), 404, "not_found")
    problem(client.get("/v1/segmentations/../../etc/passwd"), 404, "not_found")
    assert client.get("/v1/segmentations/xyz/seg.dcm").status_code == 422


def test_health_readiness_and_metrics(client: httpx.Client, segmenter: Segmenter) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": segmenter.model.backend.info.model_dump()}
    assert metric(client, "medgate_seg_requests_total", route="/healthz", method="GET", status="200") >= 1
    paths = client.get("/openapi.json").json()["paths"]
    assert {"413", "422"} <= set(paths["/v1/segment"]["post"]["responses"])
