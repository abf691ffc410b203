"""``medgate seg`` commands of this service.

Serving commands (``serve``, ``worker``) are defined in the block below; training and
evaluation commands (``train``, ``eval``, ``ablate``, ``speed``) are in
:mod:`medgate_seg.training.commands`, registered after it.
"""

from __future__ import annotations

import typer

from medgate_common.tasking.cli import worker_options_command
from medgate_seg.training.commands import register as register_training

app = typer.Typer(help="Segmentation service.", no_args_is_help=True)

# --- serving: the HTTP API and the workflow worker -------------------------------------------

worker_options_command(
    app,
    name="worker",
    help_text="Consume the segmentation queue.",
    queues="segmentation",
    modules=["medgate_seg.tasks"],
)


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8102),
) -> None:
    """Run the HTTP API (/v1/segment, /v1/segmentations/{id}, /healthz, /readyz, /metrics)."""
    from medgate_seg.main import serve

    serve(host=host, port=port)


# --- end of serving commands ------------------------------------------------------------------

# --- training: the BARL experiment and the served model (torch is imported only when they run) --

register_training(app)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="seg")
