"""Several listener processes on one DICOM port (``MEDGATE_GW_DICOM_WORKERS``).

``medgate gateway serve`` runs as its own process with two listener processes; sixteen
dcmtk ``storescu`` associations at once are spread over them by the kernel, every instance
is indexed once, and ``/metrics`` adds up what both processes counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import require_tool
from medgate_common.synth import SynthStudy
from medgate_gateway.bench.orthanc import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
MEDGATE = str(Path(sys.executable).with_name("medgate"))


def test_two_listener_processes_share_the_port(tmp_path: Path, small_ct: tuple[SynthStudy, Path]) -> None:
    http_port, dicom_port = free_port(), free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MEDGATE_HOME": str(home),
        "MEDGATE_GW_HTTP_PORT": str(http_port),
        "MEDGATE_GW_DICOM_HOST": "127.0.0.1",
        "MEDGATE_GW_DICOM_PORT": str(dicom_port),
        "MEDGATE_GW_DICOM_WORKERS": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([MEDGATE, "gateway", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        files = sorted((small_ct[1] / "dicom").glob("*.dcm"))
        storescu = require_tool("storescu")
        senders = [
            subprocess.Popen(
                [storescu, "-aec", "MEDGATE", "127.0.0.1", str(dicom_port), *map(str, files[i::16])],
                env={**os.environ, "TCP_NODELAY": "1"},
            )
            for i in range(16)
        ]
        assert [s.wait(timeout=120) for s in senders] == [0] * 16
        text = httpx.get(base + "/metrics").text
        received = [line for line in text.splitlines() if line.startswith("medgate_instances_received_total")]
        assert received == ['medgate_instances_received_total{transport="dimse"} ' + f"{float(len(files))}"]
        (metrics_dir,) = (home / "gateway").glob("metrics-*")
        counted_by = {p.name for p in metrics_dir.glob("counter_*.db")}
        assert len(counted_by) == 2, "both listener processes should have received associations"
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=60) == 0
        log.close()


def test_listen_command_answers_echo_and_stops_cleanly(tmp_path: Path) -> None:
    """``medgate gateway listen``: the DICOM listener alone, as a deployment runs it."""
    dicom_port = free_port()
    env = {
        **os.environ,
        "MEDGATE_HOME": str(tmp_path / "home"),
        "MEDGATE_GW_DICOM_HOST": "127.0.0.1",
        "MEDGATE_GW_DICOM_PORT": str(dicom_port),
        "MEDGATE_GW_AE_TITLE": "MGLISTEN",
    }
    proc = subprocess.Popen([MEDGATE, "gateway", "listen"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"listening as MGLISTEN on 127.0.0.1:{dicom_port}"), line
        echo = subprocess.run(
            [require_tool("echoscu"), "-aec", "MGLISTEN", "127.0.0.1", str(dicom_port)],
            env={**os.environ, "TCP_NODELAY": "1"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert echo.returncode == 0, echo.stderr
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=30) == 0
