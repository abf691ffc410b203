"""A real PACS forwards to MedGate: Orthanc sends a series by C-STORE and another by STOW-RS.

MedGate runs as ``medgate gateway serve`` (HTTP + DICOM listener in one process, its index
on SQLite or on PostgreSQL) and
Orthanc (Debian package) as its own process, both on free loopback ports. Orthanc is on
MedGate's AE allow-list and authenticates to DICOMweb with a service API key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from workflow_support import PG_ADMIN

from medgate_common.postgres import postgres_database
from medgate_common.synth import SynthStudy
from medgate_gateway.bench.orthanc import Orthanc, free_port, run_orthanc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
MEDGATE = str(Path(sys.executable).with_name("medgate"))


class Gateway:
    def __init__(self, http: str, dicom_port: int, key: str) -> None:
        self.http = http
        self.dicom_port = dicom_port
        self.headers = {"Authorization": f"Bearer {key}"}

    def study(self, uid: str) -> dict[str, object] | None:
        resp = httpx.get(f"{self.http}/api/v1/studies/{uid}", headers=self.headers)
        return resp.json() if resp.status_code == 200 else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """MedGate's index: its default SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield ""
        return
    with postgres_database(PG_ADMIN, "mg_e2e") as url:
        yield url


@pytest.fixture
def gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    http_port, dicom_port = free_port(), free_port()
    env = {
        **os.environ,
        "MEDGATE_HOME": str(tmp_path / "medgate"),
        "MEDGATE_GW_DATABASE_URL": database_url,
        "MEDGATE_GW_HTTP_HOST": "127.0.0.1",
        "MEDGATE_GW_HTTP_PORT": str(http_port),
        "MEDGATE_GW_DICOM_HOST": "127.0.0.1",
        "MEDGATE_GW_DICOM_PORT": str(dicom_port),
        "MEDGATE_GW_ALLOWED_AES": json.dumps(["PEERPACS@127.0.0.1"]),
        "MEDGATE_GW_STABLE_SECONDS": "2",
    }
    made = subprocess.run(
        [MEDGATE, "gateway", "user", "add", "pacs-router", "--role", "service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen([MEDGATE, "gateway", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    http = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(http + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            time.sleep(0.1)
        yield Gateway(http, dicom_port, key)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def orthanc(tmp_path: Path, gateway: Gateway) -> Iterator[Orthanc]:
    with run_orthanc(
        tmp_path / "orthanc",
        ae_title="PEERPACS",
        modalities={"medgate": ["MEDGATE", "127.0.0.1", gateway.dicom_port]},
        dicomweb_servers={"medgate": {"Url": f"{gateway.http}/dicomweb/", "HttpHeaders": gateway.headers}},
    ) as peer:
        yield peer


def upload(orthanc: Orthanc, study: tuple[SynthStudy, Path]) -> str:
    """Put a series into Orthanc and return Orthanc's series ID."""
    series_ids = set()
    for f in sorted((study[1] / "dicom").glob("*.dcm")):
        series_ids.add(orthanc.post("/instances", f.read_bytes(), "application/dicom")["ParentSeries"])
    assert len(series_ids) == 1
    return series_ids.pop()


def wait_ready(gateway: Gateway, uid: str, instances: int) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        study = gateway.study(uid)
        if study and study["state"] == "ready" and study["num_instances"] == instances:
            return study
        time.sleep(0.2)
    raise AssertionError(f"study not ready: {gateway.study(uid)}")


def test_orthanc_forwards_by_c_store_and_by_stow(
    gateway: Gateway, orthanc: Orthanc, small_ct: tuple[SynthStudy, Path], small_mr: tuple[SynthStudy, Path]
) -> None:
    n_ct = len(list((small_ct[1] / "dicom").glob("*.dcm")))
    n_mr = len(list((small_mr[1] / "dicom").glob("*.dcm")))
    echo = orthanc.post("/modalities/medgate/echo", {})
    assert echo == {} or echo is None

    ct_series = upload(orthanc, small_ct)
    job = orthanc.post("/modalities/medgate/store", {"Resources": [ct_series], "Synchronous": True})
    assert job["FailedInstancesCount"] == 0 and job["InstancesCount"] == n_ct
    ct = wait_ready(gateway, small_ct[0].header.study_uid, n_ct)  # ready after 2 s of quiet
    assert ct["modalities"] == "CT"

    mr_series = upload(orthanc, small_mr)
    stow = orthanc.post("/dicom-web/servers/medgate/stow", {"Resources": [mr_series], "Synchronous": True})
    assert stow is not None
    mr = wait_ready(gateway, small_mr[0].header.study_uid, n_mr)
    assert mr["num_series"] == 1

    audit = httpx.get(gateway.http + "/api/v1/studies", headers=gateway.headers)
    assert {s["study_uid"] for s in audit.json()} == {small_ct[0].header.study_uid, small_mr[0].header.study_uid}
