"""More than one core for DICOM: listener processes that share one port (SO_REUSEPORT).

pynetdicom runs every association in Python threads of one process, so one gateway
process receives on about one core however many modalities send at once. With
``dicom_workers`` > 1 the serving process starts that many minus one extra processes, each
with its own database engine and ingest path, all accepting on the same port; the kernel
spreads new associations over them. The completeness sweeper stays in the parent (claims
are atomic anyway), and Prometheus metrics are aggregated through prometheus_client's
multiprocess mode, which must be switched on before the library is imported: see
:func:`ensure_multiprocess_metrics`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from medgate_common.errors import TransientError
from medgate_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def ensure_multiprocess_metrics(settings: GatewaySettings) -> None:
    """Re-execute this command with multiprocess metrics on, if several workers will count.

    prometheus_client picks its storage when first imported, which the CLI has already done;
    an exec gives the same command a clean start with the variable set.
    """
    if settings.dicom_workers <= 1 or os.environ.get(METRICS_ENV):
        return
    directory = settings.home / "gateway" / f"metrics-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[METRICS_ENV] = str(directory)
    entry = "from medgate_common.cli import main; main()"
    os.execv(sys.executable, [sys.executable, "-c", entry, *sys.argv[1:]])  # noqa: S606 - our own interpreter


def _worker(settings_json: str, port: int, stop: EventType, ready: Any) -> None:
    from medgate_gateway.context import GatewayContext
    from medgate_gateway.listener.server import DicomListener

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    settings = GatewaySettings.model_validate_json(settings_json).model_copy(update={"dicom_port": port})
    context = GatewayContext.build(settings, run_migrations=False)
    listener = DicomListener(context.ingestor, settings, reuse_port=True)
    listener.start()
    ready.put(os.getpid())
    try:
        stop.wait()
    finally:
        listener.stop()
        context.close()


class WorkerPool:
    """The extra listener processes of one gateway."""

    def __init__(self, settings: GatewaySettings, port: int) -> None:
        self.settings = settings
        self.port = port
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._procs: list[Any] = []

    def start(self) -> None:
        payload = self.settings.model_dump_json()
        ready = self._ctx.Queue()
        for i in range(self.settings.dicom_workers - 1):
            proc = self._ctx.Process(
                target=_worker, args=(payload, self.port, self._stop, ready), name=f"medgate-dicom-{i + 1}", daemon=True
            )
            proc.start()
            self._procs.append(proc)
        for _ in self._procs:  # each worker reports once its socket accepts
            try:
                ready.get(timeout=60)
            except queue.Empty:
                self.stop()
                raise TransientError("a DICOM listener worker did not start") from None
        log.info("DICOM listener workers started", extra={"workers": len(self._procs) + 1, "port": self.port})

    def stop(self) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            if os.environ.get(METRICS_ENV) and proc.pid is not None:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]


def metrics_dir() -> Path | None:
    value = os.environ.get(METRICS_ENV)
    return Path(value) if value else None
