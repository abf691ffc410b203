"""``medgate vlm`` commands of this service."""

from __future__ import annotations

import typer

from medgate_common.tasking.cli import worker_options_command

app = typer.Typer(help="Reasoning service.", no_args_is_help=True)
worker_options_command(
    app, name="worker", help_text="Consume the vlm queue.", queues="vlm", modules=["medgate_vlm.tasks"]
)


@app.command("serve")
def serve_command(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8103)) -> None:
    """Run the HTTP API (/v1/triage, /v1/vqa, /v1/report, /healthz, /readyz, /metrics)."""
    from medgate_vlm.main import serve

    serve(host=host, port=port)


from medgate_vlm.training.commands import register as register_vqa_training  # noqa: E402  (torch loads lazily)

register_vqa_training(app)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="vlm")
