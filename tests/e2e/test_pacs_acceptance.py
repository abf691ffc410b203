"""A real PACS (Orthanc) accepts what ``medgate synth`` writes, sent with dcmtk's storescu.

Orthanc runs as its own process on free loopback ports; ``TCP_NODELAY=1`` keeps dcmtk and
Orthanc from the ~88 ms per-message Nagle stall on loopback.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from conftest import require_tool
from medgate_common.synth import SynthStudy

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[tuple[str, int]]:
    exe = require_tool("Orthanc")
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "medgate-test-pacs",
        "StorageDirectory": str(tmp_path / "db"),
        "IndexDirectory": str(tmp_path / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "TESTPACS",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "Plugins": [],
    }
    cfg = tmp_path / "orthanc.json"
    cfg.write_text(json.dumps(config))
    env = {**os.environ, "TCP_NODELAY": "1"}
    proc = subprocess.Popen(
        [exe, f"--logdir={tmp_path}", str(cfg)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/system", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("Orthanc did not start")
        yield base, dicom_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_orthanc_accepts_every_instance_over_c_store(
    orthanc: tuple[str, int], small_ct: tuple[SynthStudy, Path]
) -> None:
    base, port = orthanc
    study, out = small_ct
    storescu = require_tool("storescu")  # dcmtk's, not pynetdicom's console script
    started = time.perf_counter()
    proc = subprocess.run(
        [storescu, "-aet", "MEDGATE", "-aec", "TESTPACS", "+sd", "+r", "127.0.0.1", str(port), str(out / "dicom")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TCP_NODELAY": "1"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    stats = get(f"{base}/statistics")
    assert isinstance(stats, dict)
    n = study.grid.shape[0]
    assert stats["CountInstances"] == n
    assert stats["CountStudies"] == 1 and stats["CountSeries"] == 1
    (orthanc_study,) = get(f"{base}/studies?expand")  # type: ignore[misc]
    assert orthanc_study["MainDicomTags"]["StudyInstanceUID"] == study.truth.study_instance_uid
    # Orthanc hands back exactly the bytes' pixel data that was sent.
    instance = get(f"{base}/instances")[0]  # type: ignore[index]
    with urllib.request.urlopen(f"{base}/instances/{instance}/file", timeout=5) as resp:
        returned = pydicom.dcmread(io.BytesIO(resp.read()))
    sent = {pydicom.dcmread(p).SOPInstanceUID: p for p in (out / "dicom").glob("*.dcm")}
    assert returned.PixelData == pydicom.dcmread(sent[returned.SOPInstanceUID]).PixelData
    assert elapsed < 30, "TCP_NODELAY should make this take well under a second per instance"
