"""The embedded mode, ``medgate up``: the whole gateway on one machine, nothing to install.

One process runs the HTTP API and DICOMweb (uvicorn in a thread), the DICOM listener, the
completeness sweeper and the workflow watchdog; one Celery worker process consumes every
queue. The database is SQLite and the broker a SQLite file through kombu's SQLAlchemy
transport (``medgate_common.tasking.embedded``), both under ``$MEDGATE_HOME``. The same
code runs with PostgreSQL and Redis when ``MEDGATE_GW_DATABASE_URL`` and
``MEDGATE_BROKER_URL`` point at them.

The embedded broker never redelivers a message whose consumer died, so when the worker
dies the supervisor starts a new one and re-sends every step that was queued or running;
the gateway drops whatever arrives twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import uvicorn

from medgate_gateway.context import GatewayContext
from medgate_gateway.db.migrate import migrate
from medgate_gateway.listener import DicomListener
from medgate_gateway.main import create_app
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.processes import WorkerProcess, settings_env

log = logging.getLogger(__name__)


@dataclass
class EmbeddedStack:
    settings: GatewaySettings
    concurrency: int = 2
    http: bool = True
    listener: bool = True
    extra_tasks: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    supervise_interval: float = 1.0
    context: GatewayContext | None = None
    worker: WorkerProcess | None = None
    dicom: DicomListener | None = None
    server: uvicorn.Server | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        settings = self.settings
        migrate(settings.resolved_database_url())
        self.worker = WorkerProcess(
            {**settings_env(settings), **self.extra_env},
            name="embedded-worker",
            concurrency=self.concurrency,
            extra_tasks=self.extra_tasks,
            log_dir=settings.home / "logs",
        )
        self.worker.start()
        self.context = context = GatewayContext.build(settings, run_migrations=False)
        if self.listener:
            self.dicom = DicomListener(context.ingestor, settings)
            self.dicom.start()
        if self.http:
            app = create_app(settings, context=context, with_sweeper=False)
            config = uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=10,  # open event streams must not hold the stop
            )
            self.server = uvicorn.Server(config)
            self._spawn(self.server.run, "medgate-http")
        context.start_background()
        if settings.resolved_broker_url().startswith("mgsqla+") and context.watchdog is not None:
            # A worker of an earlier run that died took the messages it had consumed with
            # it (this broker never redelivers them): send those steps again.
            context.watchdog.redispatch_active("startup")
        self._spawn(self._supervise, "medgate-supervisor")

    @property
    def dicom_port(self) -> int:
        return self.dicom.port if self.dicom is not None else 0

    def _spawn(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _supervise(self) -> None:
        while not self._stop.wait(self.supervise_interval):
            worker = self.worker
            if worker is None or worker.alive() or self._stop.is_set():
                continue
            log.error("the workflow worker died; starting a new one", extra={"log": str(worker.log_path)})
            try:
                worker.restart()
            except Exception:  # try again next round
                log.exception("could not restart the worker")
                continue
            if self.context is not None and self.context.watchdog is not None:
                self.context.watchdog.redispatch_active("worker_restart")

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        if self.dicom is not None:
            self.dicom.stop()
        if self.context is not None:
            self.context.stop_background()
        for thread in self._threads:  # the supervisor first: no restart may follow the stop
            if thread.name == "medgate-supervisor":
                thread.join(timeout=120)
        if self.worker is not None:
            self.worker.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.context is not None:
            self.context.close()
