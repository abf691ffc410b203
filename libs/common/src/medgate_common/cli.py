"""The single ``medgate`` command.

Packages contribute sub-commands through the ``medgate.cli`` entry-point group: each entry
point names a ``register(app)`` function that adds commands or sub-apps to the root Typer
app. Benchmarks go through ``medgate.bench`` the same way, into the shared ``medgate bench``
group. Installing a package therefore adds its commands, and no package imports another.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

import typer

from medgate_common import __version__
from medgate_common.errors import MedgateError
from medgate_common.logging import configure_logging

ENTRY_POINT_GROUP = "medgate.cli"
BENCH_ENTRY_POINT_GROUP = "medgate.bench"

log = logging.getLogger(__name__)

Registrar = Callable[[typer.Typer], None]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="medgate",
        help="MedGate: a clinical AI gateway for radiology.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
        json_logs: bool = typer.Option(False, "--json-logs", help="Log JSON lines instead of text"),
    ) -> None:
        configure_logging("medgate-cli", level=log_level.upper(), json_lines=json_logs)

    @app.command()
    def version() -> None:
        """Print the version of every installed MedGate package."""
        typer.echo(f"medgate {__version__}")
        for name, ver in installed_packages().items():
            typer.echo(f"{name} {ver}")

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        register: Registrar = ep.load()
        register(app)
    # `medgate bench <name>`: one group that every package adds its benchmarks to.
    benchmarks = sorted(entry_points(group=BENCH_ENTRY_POINT_GROUP), key=lambda e: e.name)
    if benchmarks:
        bench = typer.Typer(
            help="Benchmarks against a peer or a baseline, run on this machine (results: docs/results/).",
            no_args_is_help=True,
        )
        for ep in benchmarks:
            add_benchmark: Registrar = ep.load()
            add_benchmark(bench)
        app.add_typer(bench, name="bench")
    return app


def installed_packages() -> dict[str, str]:
    from importlib.metadata import distributions

    found = {
        d.metadata["Name"]: d.version
        for d in distributions()
        if (d.metadata["Name"] or "").lower().startswith("medgate-")
    }
    return dict(sorted(found.items()))


def main() -> None:
    app = build_app()
    try:
        app()
    except MedgateError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
