"""A function called every few seconds in a daemon thread: the sweeper and the watchdog.

An exception in one round is logged and the next round goes ahead: a database or broker
hiccup must not stop the gateway's background work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, fn: Callable[[], object], interval: float, name: str, *, immediately: bool = False) -> None:
        self.fn = fn
        self.interval = interval
        self.name = name
        self.immediately = immediately  # first round at start, not after one interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        if not self.immediately and self._stop.wait(self.interval):
            return
        while True:
            try:
                self.fn()
            except Exception:  # try again next round
                log.exception("background round failed", extra={"thread": self.name})
            if self._stop.wait(self.interval):
                return
