"""Everything expensive a gateway process makes once: database, storage, ingest, tracker,
and (unless ``MEDGATE_GW_WORKFLOW=false``) the workflow engine and its watchdog."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from medgate_common.storage import LocalStorage, storage_from_uri
from medgate_gateway.auth.credentials import VerifiedKeyCache
from medgate_gateway.db.engine import Database
from medgate_gateway.db.migrate import migrate
from medgate_gateway.ingest.completeness import ReadyHandler, StudyTracker, log_ready
from medgate_gateway.ingest.ingestor import Ingestor
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.dispatch import CeleryDispatcher, Dispatcher
from medgate_gateway.workflow.engine import WorkflowEngine
from medgate_gateway.workflow.rules import RoutingRules
from medgate_gateway.workflow.watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    settings: GatewaySettings
    db: Database
    storage: LocalStorage
    ingestor: Ingestor
    tracker: StudyTracker
    key_cache: VerifiedKeyCache = field(default_factory=VerifiedKeyCache)
    token_secret: str = ""
    workflow: WorkflowEngine | None = None
    watchdog: Watchdog | None = None

    @classmethod
    def build(
        cls,
        settings: GatewaySettings,
        *,
        on_ready: ReadyHandler | None = None,
        run_migrations: bool = True,
        dispatcher: Dispatcher | None = None,
    ) -> GatewayContext:
        """``on_ready`` defaults to starting a workflow job (or to a log line without one)."""
        url = settings.resolved_database_url()
        if run_migrations:
            migrate(url)
        db = Database(url)
        storage = storage_from_uri(settings.resolved_storage_uri())
        workflow = watchdog = None
        if settings.workflow:
            if dispatcher is None:
                from medgate_common.tasking import make_celery

                dispatcher = CeleryDispatcher(make_celery(settings))
            workflow = WorkflowEngine(db, storage, dispatcher, RoutingRules.from_settings(settings.routing_rules))
            watchdog = Watchdog(workflow, settings, settings.resolved_broker_url())
        handler = on_ready or (workflow.on_ready if workflow else log_ready)
        return cls(
            settings=settings,
            db=db,
            storage=storage,
            ingestor=Ingestor(db, storage, settings),
            tracker=StudyTracker(db, handler, interval=settings.sweep_interval_seconds),
            token_secret=settings.resolved_token_secret(),
            workflow=workflow,
            watchdog=watchdog,
        )

    def start_background(self) -> None:
        """The sweeper (ready studies become jobs) and the watchdog (lost steps are re-sent)."""
        self.tracker.start()
        if self.watchdog is not None:
            self.watchdog.start()

    def stop_background(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        self.tracker.stop()

    def close(self) -> None:
        self.stop_background()
        self.db.dispose()
