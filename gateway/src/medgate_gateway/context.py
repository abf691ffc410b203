"""Everything expensive a gateway process makes once: database, storage, ingest, tracker."""

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

    @classmethod
    def build(
        cls, settings: GatewaySettings, *, on_ready: ReadyHandler = log_ready, run_migrations: bool = True
    ) -> GatewayContext:
        url = settings.resolved_database_url()
        if run_migrations:
            migrate(url)
        db = Database(url)
        storage = storage_from_uri(settings.resolved_storage_uri())
        return cls(
            settings=settings,
            db=db,
            storage=storage,
            ingestor=Ingestor(db, storage, settings),
            tracker=StudyTracker(db, on_ready, interval=settings.sweep_interval_seconds),
            token_secret=settings.resolved_token_secret(),
        )

    def close(self) -> None:
        self.tracker.stop()
        self.db.dispose()
