"""``medgate worker``: one Celery worker for any set of queues (all of them by default)."""

from __future__ import annotations

from pathlib import Path

import typer

from medgate_common.schemas.workflow import ALL_QUEUES


def _queues(value: str) -> list[str]:
    return [q.strip() for q in value.split(",") if q.strip()]


def worker_options_command(
    app: typer.Typer, *, name: str, help_text: str, queues: str, modules: list[str] | None
) -> None:
    """Add a worker command to ``app``; services call this for ``medgate <svc> worker``."""

    @app.command(name=name, help=help_text)
    def _worker(
        queue_list: str = typer.Option(queues, "--queues", "-Q", help="Comma-separated queues to consume"),
        concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Pool processes"),
        pool: str = typer.Option("prefork", "--pool", help="prefork (default), solo or threads"),
        hostname: str = typer.Option("", "--hostname", help="Worker node name (default: celery@<host>)"),
        extra: list[str] = typer.Option([], "--tasks", help="Extra module:function registering tasks (last wins)"),
        ready_file: Path | None = typer.Option(None, "--ready-file", help="Written when the worker consumes"),
        loglevel: str = typer.Option("WARNING", "--worker-log-level"),
    ) -> None:
        from medgate_common.settings import MedgateSettings
        from medgate_common.tasking.worker import build_worker_app, run_worker

        settings = MedgateSettings()
        celery_app = build_worker_app(settings, modules=modules, extra_modules=extra)
        run_worker(
            celery_app,
            queues=_queues(queue_list),
            concurrency=concurrency,
            pool=pool,
            hostname=hostname or None,
            ready_file=ready_file,
            loglevel=loglevel.upper(),
        )


def register(app: typer.Typer) -> None:
    worker_options_command(
        app,
        name="worker",
        help_text="Run a Celery worker with every installed step (the embedded mode's single worker).",
        queues=",".join(ALL_QUEUES),
        modules=None,
    )
