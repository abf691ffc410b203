"""The Celery application every MedGate process builds from its settings.

The configuration is where "no lost work" starts:

- ``acks_late`` + ``reject_on_worker_lost``: a message is acknowledged only after its task
  returned, and a pool process that dies mid-task puts the message back in the queue;
- prefetch 1: a worker holds one model task at a time, so a slow study does not strand
  others behind it in a dead worker's buffer;
- no result backend: results travel as events to the gateway, which stores them;
- publishing retries through broker outages (Redis restarting, a busy SQLite file).

The broker is Redis in the distributed mode and kombu's SQLAlchemy transport over a SQLite
file in the embedded mode (``tasking.embedded``), so that ``medgate up`` needs no server. Neither guarantees that
a message survives everything (Redis may run without persistence; the SQLite transport
does not redeliver a message whose consumer vanished), so the gateway keeps every job's
state in its database and re-sends steps it has lost track of (see the gateway's
``workflow.watchdog``).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from medgate_common.schemas.workflow import EVENT_TASK, GATEWAY_QUEUE, StepEvent
from medgate_common.settings import MedgateSettings

#: Publishing survives a broker that is away for up to about half a minute.
PUBLISH_RETRY_POLICY: dict[str, float] = {
    "max_retries": 30,
    "interval_start": 0.0,
    "interval_step": 0.25,
    "interval_max": 1.0,
}

TASK_ROUTES = {
    "iqa.*": {"queue": "iqa"},
    "seg.*": {"queue": "segmentation"},
    "vlm.*": {"queue": "vlm"},
    "gateway.*": {"queue": GATEWAY_QUEUE},
}


def broker_options(url: str, visibility_timeout: float) -> dict[str, Any]:
    if url.startswith(("redis://", "rediss://", "redis+socket://")):
        # Messages of a worker that died unacknowledged go back after the visibility timeout;
        # look for them every quarter of it (at most every 10 s) instead of kombu's ~100 s.
        return {
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout / 4)),
            "unacked_restore_throttle": 1,
            "socket_keepalive": True,
            "retry_on_timeout": True,
            "health_check_interval": 10,
        }
    if url.startswith(("sqla+", "mgsqla+")):
        # These options go to SQLAlchemy's create_engine.
        return {"connect_args": {"timeout": 30}}
    return {}


def make_celery(settings: MedgateSettings, *, name: str = "medgate") -> Celery:
    url = settings.resolved_broker_url()
    if url.startswith("mgsqla+"):
        from medgate_common.tasking.embedded import install

        install()
    if url.startswith(("sqla+sqlite:///", "mgsqla+sqlite:///")):
        from pathlib import Path

        Path(url.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    app = Celery(name, broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_routes=TASK_ROUTES,
        task_default_queue=GATEWAY_QUEUE,
        task_publish_retry=True,
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=broker_options(url, settings.broker_visibility_timeout),
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def send_event(app: Celery, event: StepEvent) -> None:
    """Put a step event on the gateway's queue (retried through broker outages)."""
    app.send_task(
        EVENT_TASK,
        args=[event.model_dump(mode="json")],
        queue=GATEWAY_QUEUE,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )
