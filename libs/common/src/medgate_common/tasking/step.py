"""Turn a plain step function into a reliable Celery task that reports to the gateway.

A step function takes a :class:`StepRequest` and returns a :class:`StepResult`; it knows
nothing of Celery. The wrapper:

- announces ``started`` (the gateway records where and when the step runs);
- retries, with exponential backoff, only errors that say they are transient
  (``MedgateError.retryable``, lost connections, timeouts of a peer);
- reports every other error as ``failed`` with its stable code, and a soft time limit as
  ``step_timeout``; the message is then acknowledged, because sending it again would fail
  the same way;
- sends ``done`` (or ``not_installed``) with the JSON result and the artifact URIs.

A task that is redelivered after its worker died runs again and reports again; the gateway
applies the first final event of a step and counts the rest as duplicates.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from celery import Celery, Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from medgate_common.errors import MedgateError
from medgate_common.schemas.workflow import StepEvent, StepEventKind, StepName, StepRequest, StepResult
from medgate_common.tasking.app import send_event

log = logging.getLogger(__name__)

StepFunction = Callable[[StepRequest], StepResult]
T = TypeVar("T")

TRANSIENT_BUILTINS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


@dataclass(frozen=True, slots=True)
class StepSpec:
    step: StepName
    time_limit: float = 900.0
    soft_time_limit: float = 840.0
    max_retries: int = 3
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0

    def backoff(self, retries: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_s * (2**retries)))


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, MedgateError):
        return exc.retryable
    return isinstance(exc, TRANSIENT_BUILTINS)


def step_task(app: Celery, spec: StepSpec) -> Callable[[StepFunction], Task]:
    """Register ``fn`` as the task of ``spec.step`` on ``app`` (replacing an earlier one)."""

    def decorate(fn: StepFunction) -> Task:
        def run(task: Task, payload: dict[str, Any]) -> None:
            request = StepRequest.model_validate(payload)
            attempt = int(task.request.retries or 0) + 1

            def event(kind: StepEventKind, **fields: Any) -> StepEvent:
                return request.event(kind, attempt=attempt, worker=worker_identity(), **fields)

            def report(final: StepEvent) -> None:
                try:
                    send_event(task.app, final)
                except Exception as exc:  # broker away for longer than the publish retries
                    log.exception("could not report a step", extra={"job_id": request.job_id})
                    raise Reject(exc, requeue=True) from exc

            send_event(task.app, event(StepEventKind.started))
            started = time.perf_counter()
            try:
                outcome = fn(request)
            except Retry:
                raise
            except SoftTimeLimitExceeded:
                report(
                    event(
                        StepEventKind.failed,
                        error_code="step_timeout",
                        error_detail=f"no answer within {spec.soft_time_limit:g} s",
                        duration_s=time.perf_counter() - started,
                    ),
                )
                return
            except Exception as exc:
                code = exc.code if isinstance(exc, MedgateError) else "step_error"
                if is_transient(exc) and task.request.retries < spec.max_retries:
                    delay = spec.backoff(task.request.retries)
                    log.warning(
                        "transient error, retrying",
                        extra={"job_id": request.job_id, "step": request.step.value, "code": code, "in_s": delay},
                    )
                    raise task.retry(exc=exc, countdown=delay, max_retries=spec.max_retries) from exc
                log.exception("step failed", extra={"job_id": request.job_id, "step": request.step.value})
                detail = exc.message if isinstance(exc, MedgateError) else f"{type(exc).__name__}: {exc}"
                report(
                    event(
                        StepEventKind.failed,
                        error_code=code,
                        error_detail=detail[:2000],
                        duration_s=time.perf_counter() - started,
                    ),
                )
                return
            duration = time.perf_counter() - started
            kind = StepEventKind.done if outcome.installed else StepEventKind.not_installed
            report(
                event(
                    kind,
                    duration_s=duration,
                    result=outcome.result,
                    artifacts=outcome.artifacts,
                    model=outcome.model,
                    error_detail=outcome.note,
                ),
            )

        # Celery compiles a signature check named after the function: it must be an identifier.
        run.__name__ = fn.__name__ if fn.__name__.isidentifier() else f"{spec.step.value}_step"
        run.__doc__ = fn.__doc__
        if spec.step.task in app.tasks:  # a later registration replaces the earlier one
            app.tasks.unregister(spec.step.task)
        task: Task = app.task(
            run,
            name=spec.step.task,
            # Celery's default shares a task with every app made later in the process; a
            # step belongs to the app it was registered on, nothing else.
            shared=False,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            # A step that kills its pool process (out of memory, a crash in native code)
            # comes back as a counted retry, so it cannot loop forever.
            retry_on_worker_lost=True,
            default_retry_delay=spec.backoff_s,  # that retry's delay (Celery's default is 3 min)
            time_limit=spec.time_limit,
            soft_time_limit=spec.soft_time_limit,
            max_retries=spec.max_retries,
            ignore_result=True,
        )
        return task

    return decorate


class PerProcess(Generic[T]):
    """One ``T`` per worker process, made by ``factory`` on first use.

    Made after the fork, so pool processes never share what it holds (an ONNX Runtime
    session, an open store); a forked child makes its own on its first task.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._pid = 0
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None or self._pid != os.getpid():
            self._value = self._factory()
            self._pid = os.getpid()
        return self._value
