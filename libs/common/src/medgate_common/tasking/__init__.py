"""Celery plumbing every MedGate worker shares: the app, the step wrapper, the worker.

Services stay stateless and never import the gateway: a service registers its step
functions with :func:`step_task`, and the wrapper turns what they return or raise into
:class:`~medgate_common.schemas.StepEvent` messages on the gateway's queue.
"""

from medgate_common.tasking.app import make_celery, send_event
from medgate_common.tasking.step import PerProcess, StepSpec, step_task
from medgate_common.tasking.stored import StoredStep

__all__ = ["PerProcess", "StepSpec", "StoredStep", "make_celery", "send_event", "step_task"]
