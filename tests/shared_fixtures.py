"""Test helpers more than one package's tests use (found through the root conftest's path).

Not a conftest: package conftests and fixture modules import these by name, which the
several ``conftest`` modules of the repository make ambiguous.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """An ASGI ``app`` served by uvicorn on a free loopback port (lifespan included), in a
    thread; yields its base URL. Gateway and service API tests share it."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def drain_step_events(app: Any) -> list[Any]:
    """Every step event waiting on the gateway queue of ``app``'s broker, acknowledged, in order."""
    from medgate_common.schemas.workflow import GATEWAY_QUEUE, StepEvent

    found = []
    with app.connection_for_read() as conn, conn.SimpleQueue(GATEWAY_QUEUE) as queue:
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return found
            found.append(StepEvent.model_validate(message.decode()[0][0]))
            message.ack()
