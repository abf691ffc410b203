"""The gateway's own Celery tasks (queue ``gateway``): step events and result assembly.

``register(app)`` is the ``medgate.tasks`` entry point. The worker process builds its
gateway context (database, storage, workflow engine) once, on its first task, from the
environment's settings; the schema must already be migrated by the gateway.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, Task
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from medgate_common.errors import TransientError
from medgate_common.schemas.workflow import EVENT_TASK, StepEvent, StepName, StepRequest, StepResult
from medgate_common.tasking import StepSpec, step_task
from medgate_gateway.context import GatewayContext
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.assemble import assemble
from medgate_gateway.workflow.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)

ASSEMBLE = StepSpec(StepName.assemble, time_limit=600, soft_time_limit=570, max_retries=5, backoff_s=1.0)


class WorkerGateway:
    """The gateway context of one worker process, made on first use (after the fork)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._pid = 0
        self._context: GatewayContext | None = None

    def context(self) -> GatewayContext:
        if self._context is None or self._pid != os.getpid():
            self._context = GatewayContext.build(
                GatewaySettings(), run_migrations=False, dispatcher=CeleryDispatcher(self.app)
            )
            self._pid = os.getpid()
        return self._context


def register(app: Celery) -> None:
    gateway = WorkerGateway(app)

    def step_event(task: Task, payload: dict[str, Any]) -> None:
        engine = gateway.context().workflow
        assert engine is not None
        try:
            try:
                event = StepEvent.model_validate(payload)
            except ValidationError as exc:  # a service speaking another version of the contract
                engine.reject_event(payload, str(exc))
                return
            engine.handle_event(event)
        except (DBAPIError, TransientError) as exc:  # database busy or away: apply it later, however late
            raise task.retry(exc=exc, countdown=min(30.0, 0.5 * 2**task.request.retries)) from exc

    app.task(
        step_event,
        name=EVENT_TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        ignore_result=True,
    )

    def run_assemble(request: StepRequest) -> StepResult:
        ctx = gateway.context()
        try:
            return assemble(ctx.db, ctx.ingestor, request)
        except DBAPIError as exc:
            raise TransientError("database unavailable during assembly") from exc

    step_task(app, ASSEMBLE)(run_assemble)
