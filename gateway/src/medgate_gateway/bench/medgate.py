"""MedGate as the benchmark's server: ``medgate gateway serve`` in its own process.

It gets a fresh home (SQLite unless a database URL is given), a ``service`` user with an
API key for STOW, one listener process per requested worker, and a long quiet time so no
study turns "ready" in the middle of a measurement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from medgate_gateway.bench.orthanc import free_port
from medgate_gateway.bench.senders import BenchError, find_pid
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import Instance
from medgate_gateway.settings import GatewaySettings


@dataclass
class MedgateServer:
    http_url: str
    dicom_port: int
    ae_title: str
    api_key: str
    database_url: str
    pid: int | None  # the server itself, also when a wrapper (a profiler) started it
    db: Database = field(repr=False)

    def count_instances(self) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


@contextmanager
def run_medgate(
    workdir: Path, *, database_url: str = "", wrap: tuple[str, ...] = (), dicom_workers: int = 1
) -> Iterator[MedgateServer]:
    """``medgate gateway serve`` (HTTP and DICOM listener) as its own process, with an API key."""
    from medgate_gateway.auth.users import create_api_key, create_user
    from medgate_gateway.context import GatewayContext

    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    settings = GatewaySettings(home=home, database_url=database_url, dicom_host="127.0.0.1", dicom_port=dicom_port)
    context = GatewayContext.build(settings)  # migrates; the server process then finds the schema
    try:
        create_user(context.db, "bench", "service")
        api_key = create_api_key(context.db, "bench", name="bench")
    finally:
        context.close()
    env = {
        **os.environ,
        "MEDGATE_HOME": str(home),
        "MEDGATE_GW_DATABASE_URL": database_url,
        "MEDGATE_GW_DICOM_HOST": "127.0.0.1",
        "MEDGATE_GW_DICOM_PORT": str(dicom_port),
        "MEDGATE_GW_HTTP_HOST": "127.0.0.1",
        "MEDGATE_GW_HTTP_PORT": str(http_port),
        "MEDGATE_GW_STABLE_SECONDS": "3600",  # no study goes "ready" mid-benchmark
        "MEDGATE_GW_DICOM_WORKERS": str(dicom_workers),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    entry = "from medgate_common.cli import main; main()"
    cli = [sys.executable, "-c", entry, "gateway", "serve"]
    log = (workdir / "medgate.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter; the wrapper is the operator's choice
        [*wrap, *cli], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{http_port}"
    db = Database(settings.resolved_database_url())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"MedGate did not start; see {workdir / 'medgate.log'}")
            time.sleep(0.1)
        pid = find_pid(entry, under=proc.pid)
        yield MedgateServer(url, dicom_port, settings.ae_title, api_key, settings.resolved_database_url(), pid, db)
    finally:
        db.dispose()
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the process group (like Ctrl-C), so a profiler wrapper writes its output."""
    for sig, wait in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
