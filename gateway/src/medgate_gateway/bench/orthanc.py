"""Run a private Orthanc (the Debian package) as a peer PACS on free loopback ports.

Used by the ingest benchmark and by the tests that need a real PACS. ``TCP_NODELAY=1`` in
its environment keeps its DICOM sockets from the delayed-ACK stall on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medgate_common.errors import ConfigError, TransientError

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Orthanc:
    http_url: str
    dicom_port: int
    ae_title: str
    workdir: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.http_url + path, timeout=30) as resp:  # noqa: S310 - our own http URL
            return json.loads(resp.read())

    def post(self, path: str, body: bytes | dict[str, Any] | list[Any], content_type: str = "application/json") -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.http_url + path, data=data, headers={"Content-Type": content_type})  # noqa: S310
        with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if raw else None


def orthanc_executable() -> str:
    exe = shutil.which("Orthanc", path="/usr/sbin:/usr/bin:/usr/local/bin")
    if exe is None:
        raise ConfigError("Orthanc is not installed; run scripts/setup.sh")
    return exe


@contextmanager
def run_orthanc(
    workdir: Path,
    *,
    ae_title: str = "ORTHANC",
    modalities: dict[str, list[Any]] | None = None,
    dicomweb_servers: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Iterator[Orthanc]:
    """Start Orthanc with its index and storage in ``workdir``; stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    plugins = [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else []
    config: dict[str, Any] = {
        "Name": "medgate-peer-pacs",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "DicomModalities": modalities or {},
        "Plugins": plugins,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": dicomweb_servers or {}},
        "HttpTimeout": 120,
    }
    config.update(extra or {})
    cfg = workdir / "orthanc.json"
    cfg.write_text(json.dumps(config))
    env = {**os.environ, "TCP_NODELAY": "1"}
    log = (workdir / "orthanc.log").open("wb")
    proc = subprocess.Popen([orthanc_executable(), str(cfg)], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    orthanc = Orthanc(f"http://127.0.0.1:{http_port}", dicom_port, ae_title, workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                orthanc.get("/system")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise TransientError("Orthanc did not start; see orthanc.log", workdir=str(workdir)) from None
                time.sleep(0.1)
        yield orthanc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
