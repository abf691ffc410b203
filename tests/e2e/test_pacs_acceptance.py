"""A real PACS (Orthanc) accepts what ``medgate synth`` writes, sent with dcmtk's storescu.

Orthanc runs as its own process on free loopback ports; ``TCP_NODELAY=1`` keeps dcmtk and
Orthanc from the ~88 ms per-message Nagle stall on loopback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from conftest import require_tool
from medgate_common.synth import SynthStudy
from medgate_gateway.bench.orthanc import run_orthanc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[tuple[str, int]]:
    require_tool("Orthanc")
    with run_orthanc(tmp_path / "orthanc", ae_title="TESTPACS", extra={"DicomCheckCalledAet": True}) as peer:
        yield peer.http_url, peer.dicom_port


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
