"""Run a Celery worker for some of MedGate's queues.

Step implementations come from the ``medgate.tasks`` entry-point group: each entry point
names a ``register(app)`` function in an installed package (the gateway, each service).
A service's own worker loads only its own module and consumes only its own queue; the
embedded mode's single worker loads them all. ``extra_modules`` are registered last and
replace tasks of the same name: the benchmark uses that to run calibrated workloads
through the real workflow.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from medgate_common.errors import ConfigError
from medgate_common.schemas.workflow import ALL_QUEUES
from medgate_common.settings import MedgateSettings
from medgate_common.tasking.app import make_celery

ENTRY_POINT_GROUP = "medgate.tasks"

log = logging.getLogger(__name__)

Register = Callable[[Celery], None]


def installed_task_modules() -> dict[str, str]:
    """Entry-point name -> module, for every installed package that brings tasks."""
    return {ep.name: ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _registrar(target: str) -> Register:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    register = getattr(module, attr or "register", None)
    if not callable(register):
        raise ConfigError(f"{target} has no register(app) function")
    return register  # type: ignore[no-any-return]


def build_worker_app(
    settings: MedgateSettings, *, modules: Sequence[str] | None = None, extra_modules: Sequence[str] = ()
) -> Celery:
    """The app with the tasks of ``modules`` (default: every installed one), then extras."""
    app = make_celery(settings)
    targets = list(modules) if modules is not None else sorted(installed_task_modules().values())
    for target in [*targets, *extra_modules]:
        _registrar(target)(app)
    return app


def check_time_limits(app: Celery) -> list[str]:
    """Warn about steps that may run longer than Redis keeps their message invisible.

    Past the visibility timeout Redis hands a running task to a second worker: harmless
    (the gateway keeps one result) but twice the compute.
    """
    options = app.conf.broker_transport_options or {}
    visibility = options.get("visibility_timeout")
    if visibility is None:
        return []
    too_long = sorted(
        name
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and (getattr(task, "time_limit", None) or 0) >= visibility
    )
    for name in too_long:
        log.warning(
            "task time limit is not below the broker's visibility timeout",
            extra={"task": name, "visibility_timeout": visibility},
        )
    return too_long


def run_worker(
    app: Celery,
    *,
    queues: Sequence[str] = ALL_QUEUES,
    concurrency: int = 1,
    pool: str = "prefork",
    hostname: str | None = None,
    ready_file: Path | None = None,
    loglevel: str = "WARNING",
) -> None:
    """Run until stopped (SIGTERM: warm shutdown, unfinished messages go back)."""
    unknown = set(queues) - set(ALL_QUEUES)
    if unknown:
        raise ConfigError(f"unknown queue(s) {sorted(unknown)}; known: {', '.join(ALL_QUEUES)}")
    check_time_limits(app)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)

        def _ready(**_: Any) -> None:
            ready_file.write_text("ready\n")

        worker_ready.connect(_ready, weak=False)
    argv = [
        "worker",
        "--queues",
        ",".join(queues),
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--loglevel",
        loglevel,
        # Gossip, mingle and heartbeats need broadcast messages, which the embedded
        # broker lacks, and MedGate does not use them.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv=argv)
