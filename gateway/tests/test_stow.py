"""STOW-RS against the live server: dicomweb-client, raw HTTP, bad input, auth."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from gateway_fixtures import (
    Credentials,
    FullDisk,
    fresh_copy,
    modified,
    sample_path,
    serve_in_thread,
    with_transfer_syntax_uid,
)
from sqlalchemy import func, select

from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Instance, Study
from medgate_gateway.dicomweb.multipart import multipart_chunks
from medgate_gateway.dimse_status import BAD_TRANSFER_SYNTAX, INVALID_DICOM, MISSING_TAG, OUT_OF_RESOURCES

pytestmark = pytest.mark.integration
CT = "application/dicom"


def stow(
    base: str, headers: dict[str, str], blobs: list[bytes], query: str = "", path: str = "/dicomweb/studies"
) -> httpx.Response:
    body = b"".join(multipart_chunks([(CT, b) for b in blobs], "XbOuNdArY"))
    content_type = 'multipart/related; type="application/dicom"; boundary=XbOuNdArY'
    return httpx.post(base + path + query, content=body, headers={**headers, "Content-Type": content_type}, timeout=60)


def n_instances(context: GatewayContext) -> int:
    with context.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def failure_reasons(resp: httpx.Response) -> list[int]:
    return [item["00081197"]["Value"][0] for item in resp.json().get("00081198", {}).get("Value", [])]


def test_dicomweb_client_stores_a_series(
    live_server: str, credentials: Credentials, context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    client = DICOMwebClient(url=live_server + "/dicomweb", headers=credentials.technologist)
    datasets = [pydicom.dcmread(f) for f in sorted((small_ct[1] / "dicom").glob("*.dcm"))]
    response = client.store_instances(datasets)
    stored = response.ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in stored] == [ds.SOPInstanceUID for ds in datasets]
    study = datasets[0].StudyInstanceUID
    assert all(f"/dicomweb/studies/{study}/series/" in item.RetrieveURL for item in stored)
    assert "FailedSOPSequence" not in response
    assert n_instances(context) == len(datasets)


def test_mixed_request_reports_each_failure(
    live_server: str, credentials: Credentials, context: GatewayContext
) -> None:
    good = fresh_copy(sample_path("explicit"))
    blobs = [
        good,
        b"this is not DICOM" * 20,
        good[:-400],  # truncated
        modified(fresh_copy(sample_path("explicit")), SeriesInstanceUID=None),
        modified(fresh_copy(sample_path("explicit")), StudyInstanceUID="../../../etc"),
        with_transfer_syntax_uid(fresh_copy(sample_path("explicit")), "1.2.840.10008.1.2.2"),
    ]
    resp = stow(live_server, credentials.technologist, blobs)
    assert resp.status_code == 202
    assert resp.headers["content-type"].startswith("application/dicom+json")
    assert failure_reasons(resp) == [INVALID_DICOM, INVALID_DICOM, MISSING_TAG, INVALID_DICOM, BAD_TRANSFER_SYNTAX]
    assert len(resp.json()["00081199"]["Value"]) == 1
    assert n_instances(context) == 1
    assert not [p for p in context.storage.root.rglob("*") if "etc" in p.name]


def test_all_failed_is_409_and_conflict_is_reported(
    live_server: str, credentials: Credentials, context: GatewayContext
) -> None:
    data = fresh_copy(sample_path("explicit"))
    assert stow(live_server, credentials.technologist, [data]).status_code == 200
    again = stow(live_server, credentials.technologist, [data])  # identical: idempotent success
    assert again.status_code == 200
    conflict = stow(live_server, credentials.technologist, [modified(data, PatientName="Not^Same")])
    assert conflict.status_code == 409
    assert failure_reasons(conflict) == [0xC213]
    assert n_instances(context) == 1


def test_study_in_path_must_match(live_server: str, credentials: Credentials, context: GatewayContext) -> None:
    data = fresh_copy(sample_path("explicit"))
    study = pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID
    ok = stow(live_server, credentials.technologist, [data], path=f"/dicomweb/studies/{study}")
    assert ok.status_code == 200
    other = stow(
        live_server, credentials.technologist, [fresh_copy(sample_path("explicit"))], path="/dicomweb/studies/1.2.3"
    )
    assert other.status_code == 409
    assert failure_reasons(other) == [0xA900]


def test_complete_hint_makes_the_study_ready(
    live_server: str, credentials: Credentials, context: GatewayContext, small_mr: tuple[object, Path]
) -> None:
    blobs = [f.read_bytes() for f in sorted((small_mr[1] / "dicom").glob("*.dcm"))]
    assert stow(live_server, credentials.service, blobs[:10]).status_code == 200
    with context.db.read() as session:
        assert session.scalars(select(Study.state)).one() == "receiving"
    assert stow(live_server, credentials.service, blobs[10:], query="?complete=true").status_code == 200
    with context.db.read() as session:
        study = session.scalars(select(Study)).one()
    assert (study.state, study.num_instances) == ("ready", len(blobs))


def test_wrong_media_types(live_server: str, credentials: Credentials) -> None:
    resp = httpx.post(
        live_server + "/dicomweb/studies", content=b"x", headers={**credentials.technologist, "Content-Type": CT}
    )
    assert resp.status_code == 415
    assert resp.json()["code"] == "unsupported_media_type"
    resp = httpx.post(
        live_server + "/dicomweb/studies",
        content=b"--b\r\n\r\n{}\r\n--b--\r\n",
        headers={
            **credentials.technologist,
            "Content-Type": 'multipart/related; type="application/dicom+json"; boundary=b',
        },
    )
    assert resp.status_code == 415


def test_unauthenticated_expired_and_wrong_role(
    live_server: str, credentials: Credentials, context: GatewayContext
) -> None:
    from medgate_gateway.auth.credentials import issue_token

    data = [fresh_copy(sample_path("explicit"))]
    assert stow(live_server, {}, data).status_code == 401
    assert stow(live_server, {"Authorization": "Bearer not-a-token"}, data).status_code == 401
    expired, _ = issue_token("tech", "technologist", secret=context.token_secret, ttl_seconds=-10, issuer="medgate")
    resp = stow(live_server, {"Authorization": f"Bearer {expired}"}, data)
    assert resp.status_code == 401 and "expired" in resp.json()["detail"]
    forged, _ = issue_token("tech", "admin", secret="another-secret-" + "y" * 32, ttl_seconds=60, issuer="medgate")
    assert stow(live_server, {"Authorization": f"Bearer {forged}"}, data).status_code == 401
    assert stow(live_server, credentials.radiologist, data).status_code == 403  # readers may not write
    assert stow(live_server, credentials.site, data).status_code == 403  # FL sites never touch images
    assert n_instances(context) == 0


@pytest.fixture
def tiny_limit_server(context: GatewayContext) -> Iterator[str]:
    limited = GatewayContext(
        settings=context.settings.model_copy(update={"max_upload_bytes": 100_000}),
        db=context.db,
        storage=context.storage,
        ingestor=context.ingestor,
        tracker=context.tracker,
        token_secret=context.token_secret,
    )
    with serve_in_thread(limited) as url:
        yield url


def test_oversized_upload_is_refused_before_it_is_read(
    tiny_limit_server: str, credentials: Credentials, context: GatewayContext
) -> None:
    """Declare 50 MB, send only the headers: the 413 must come back without the body."""
    port = int(tiny_limit_server.rsplit(":", 1)[1])
    token = credentials.technologist["Authorization"]
    head = (
        "POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {token}\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=b\r\n'
        "Content-Length: 50000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        reply = ""
        while "payload_too_large" not in reply:  # the body may follow the headers in another segment
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413")
    assert "payload_too_large" in reply


def test_oversized_chunked_upload_is_cut_off(
    tiny_limit_server: str, credentials: Credentials, context: GatewayContext
) -> None:
    blobs = [fresh_copy(sample_path("explicit")) for _ in range(5)]  # ~40 kB each, no Content-Length

    def chunks() -> Iterator[bytes]:
        yield from multipart_chunks([(CT, b) for b in blobs], "b")

    resp = httpx.post(
        tiny_limit_server + "/dicomweb/studies",
        content=chunks(),
        headers={**credentials.technologist, "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert resp.status_code == 413
    assert n_instances(context) < 5  # the parts before the limit are whole instances


def test_disk_failure_during_stow(
    live_server: str, credentials: Credentials, context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    blobs = [f.read_bytes() for f in sorted((small_ct[1] / "dicom").glob("*.dcm"))][:6]
    context.ingestor.storage = FullDisk(context.storage.root, room=4)
    resp = stow(live_server, credentials.technologist, blobs, query="?complete=true")
    assert resp.status_code == 202
    assert failure_reasons(resp) == [OUT_OF_RESOURCES, OUT_OF_RESOURCES]
    assert n_instances(context) == 4
    with context.db.read() as session:
        # a request with failures does not hand the study over, whatever the hint said
        assert session.scalars(select(Study.state)).one() == "receiving"
    assert not list(context.storage.root.rglob(".incoming-*"))
