"""The embedded mode's broker: kombu's SQLAlchemy transport over a SQLite file, tuned.

Three things the stock transport does not do for us:

- it polls its tables once a second, so every step would wait up to a second for its
  worker; this subclass polls every 0.1 s;
- it opens SQLite in rollback-journal mode with a 5 s lock timeout, where a gateway and a
  worker writing at once should queue rather than fail; this one uses WAL and a 30 s busy
  timeout;
- it marks a consumed message invisible and never deletes it, so the file grows with every
  message ever sent. This one deletes the row when it hands the message out, as Redis
  pops a list. Nothing is lost by that: the stock transport never makes such a row visible
  again either, a warm shutdown puts unacknowledged messages back through ``_put``, and
  the gateway re-sends what a dead worker took (see the gateway's ``workflow.watchdog``). Its URL scheme is ``medgate-sqla+sqlite:///path``;
:func:`install` registers the scheme with kombu.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SqlaChannel
from kombu.transport.sqlalchemy import Transport as SqlaTransport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from sqlalchemy import event, text

SCHEME = "mgsqla"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Channel(SqlaChannel):
    def _get(self, queue: Any, timeout: Any = None) -> Any:
        obj = self._get_or_create(queue)  # type: ignore[no-untyped-call]
        if self.session.bind.name == "sqlite":
            self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            msg = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id, self.message_cls.visible.is_(True))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            payload = loads(bytes_to_str(msg.payload))  # type: ignore[no-untyped-call]
            self.session.delete(msg)
            return payload
        finally:
            self.session.commit()

    def _engine_from_config(self) -> Any:
        engine = super()._engine_from_config()  # type: ignore[no-untyped-call]
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine


class Transport(SqlaTransport):
    Channel = Channel
    polling_interval = 0.1


def install() -> None:
    TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
