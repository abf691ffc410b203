"""Health, readiness, Prometheus metrics, the OpenAPI document and JSON logs without PHI."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import Credentials, sample_path
from prometheus_client.parser import text_string_to_metric_families

from medgate_common.errors import MedgateError
from medgate_common.logging import JsonFormatter
from medgate_gateway.context import GatewayContext
from medgate_gateway.ingest.ingestor import Source

pytestmark = pytest.mark.integration


def metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(base + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_health_and_readiness(live_server: str, context: GatewayContext) -> None:
    assert httpx.get(live_server + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(live_server + "/readyz").json()
    assert ready == {"status": "ready", "database": context.db.dialect}


def test_metrics_count_instances_bytes_and_rejections(live_server: str, context: GatewayContext) -> None:
    before = metric(live_server, "medgate_instances_received_total", transport="dimse")
    before_bytes = metric(live_server, "medgate_received_bytes_total", transport="dimse")
    before_bad = metric(live_server, "medgate_instances_rejected_total", transport="dimse", code="invalid_dicom")
    data = sample_path("explicit").read_bytes()
    context.ingestor.ingest(data, Source(transport="dimse", actor="ae:X"))
    with pytest.raises(MedgateError):
        context.ingestor.ingest(b"junk" * 100, Source(transport="dimse", actor="ae:X"))
    assert metric(live_server, "medgate_instances_received_total", transport="dimse") == before + 1
    assert metric(live_server, "medgate_received_bytes_total", transport="dimse") == before_bytes + len(data)
    assert (
        metric(live_server, "medgate_instances_rejected_total", transport="dimse", code="invalid_dicom")
        == before_bad + 1
    )
    context.tracker.mark_complete(str(__import__("pydicom").dcmread(sample_path("explicit")).StudyInstanceUID))
    assert metric(live_server, "medgate_study_ready_latency_seconds_count") >= 1


def test_openapi_matches_the_routes(live_server: str, credentials: Credentials) -> None:
    """Every documented operation is served (no router 404/405); undocumented paths are not."""
    import re

    doc = httpx.get(live_server + "/openapi.json").json()
    assert doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"
    operations = [(path, method.upper()) for path, ops in doc["paths"].items() for method in ops]
    assert ("/dicomweb/studies", "POST") in operations and ("/api/v1/auth/token", "POST") in operations
    for path, method in operations:
        url = live_server + re.sub(r"\{[^}]+\}", "1", path)
        with httpx.stream(method, url, headers=credentials.admin) as resp:
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                assert resp.status_code == 200  # an endless stream: the status line is enough
                continue
            resp.read()
        unrouted = resp.status_code == 405 or (resp.status_code == 404 and resp.json() == {"detail": "Not Found"})
        assert not unrouted, f"{method} {path} is documented but not served"
    assert httpx.get(live_server + "/api/v1/nothing-here").json() == {"detail": "Not Found"}
    assert httpx.delete(live_server + "/api/v1/studies", headers=credentials.admin).status_code == 405


def test_logs_are_json_without_patient_identifiers(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    """Ingest with a conflict (which logs at WARNING) and check every line for PHI."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    root = logging.getLogger("medgate_gateway")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        from gateway_fixtures import modified

        data = (small_ct[1] / "dicom" / "IM0001.dcm").read_bytes()
        context.ingestor.ingest(data, Source(transport="dimse", actor="ae:X"))
        with pytest.raises(MedgateError):
            context.ingestor.ingest(
                modified(data, PatientName="Conflict^Patient"), Source(transport="dimse", actor="ae:X")
            )
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "expected at least the conflict warning"
    header = __import__("pydicom").dcmread(io.BytesIO(data), stop_before_pixels=True)
    text = stream.getvalue()
    assert str(header.PatientName) not in text and str(header.PatientID) not in text
    assert all(line["service"] == "gateway" for line in lines)
