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
import threading
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


def _worker(settings_json: str, port: int, ready: Any) -> None:
    from medgate_gateway.context import GatewayContext
    from medgate_gateway.listener.server import DicomListener

    # The parent stops a worker with SIGTERM. (A shared multiprocessing.Event would not do:
    # a worker killed while waiting on it can leave its lock held for everyone.)
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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
    """The extra listener processes of one gateway, restarted if one dies.

    A worker killed mid-association (out of memory, ``kill -9``) loses only what it had not
    yet acknowledged: the sender sees the association drop and sends again, and nothing
    half-written was indexed. The pool notices within ``watch_interval`` and starts a new
    worker on the same port.
    """

    def __init__(self, settings: GatewaySettings, port: int, *, watch_interval: float = 1.0) -> None:
        self.settings = settings
        self.port = port
        self.watch_interval = watch_interval
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._stop = threading.Event()
        self._ready: Any = self._ctx.Queue()
        self._payload = settings.model_dump_json()
        self._procs: list[Any] = []
        self._watcher: threading.Thread | None = None

    def _spawn(self, index: int) -> Any:
        proc = self._ctx.Process(
            target=_worker,
            args=(self._payload, self.port, self._ready),
            name=f"medgate-dicom-{index + 1}",
            daemon=True,
        )
        proc.start()
        try:
            self._ready.get(timeout=60)  # it reports once its socket accepts
        except queue.Empty:
            proc.terminate()
            raise TransientError("a DICOM listener worker did not start") from None
        return proc

    def start(self) -> None:
        try:
            for i in range(self.settings.dicom_workers - 1):
                self._procs.append(self._spawn(i))
        except TransientError:
            self.stop()
            raise
        if self._procs:
            self._watcher = threading.Thread(target=self._watch, name="medgate-dicom-workers", daemon=True)
            self._watcher.start()
        log.info("DICOM listener workers started", extra={"workers": len(self._procs) + 1, "port": self.port})

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_interval):
            for i, proc in enumerate(self._procs):
                if proc.is_alive() or self._stop.is_set():
                    continue
                log.error("DICOM listener worker died; starting another", extra={"exitcode": proc.exitcode})
                _forget(proc)
                try:
                    self._procs[i] = self._spawn(i)
                    self.restarts += 1
                except TransientError:
                    log.exception("could not restart a DICOM listener worker")

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        for proc in self._procs:
            proc.terminate()  # SIGTERM: the worker closes its listener and database
        for proc in self._procs:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            _forget(proc)
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None and p.is_alive()]


def _forget(proc: Any) -> None:
    """Tell multiprocess metrics a worker is gone (its counts stay in the totals)."""
    if os.environ.get(METRICS_ENV) and proc.pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]


def metrics_dir() -> Path | None:
    value = os.environ.get(METRICS_ENV)
    return Path(value) if value else None
