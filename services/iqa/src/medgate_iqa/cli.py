"""``medgate iqa`` commands of this service."""

from __future__ import annotations

import typer

from medgate_common.tasking.cli import worker_options_command

app = typer.Typer(help="Image-quality service.", no_args_is_help=True)
worker_options_command(
    app, name="worker", help_text="Consume the iqa queue.", queues="iqa", modules=["medgate_iqa.tasks"]
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="iqa")
