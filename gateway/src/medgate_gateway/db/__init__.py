"""The gateway database: tables, engine, migrations and queries."""

from medgate_gateway.db.engine import Database
from medgate_gateway.db.migrate import migrate

__all__ = ["Database", "migrate"]
