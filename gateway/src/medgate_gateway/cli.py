"""Gateway commands: ``medgate demo`` (the main job) and ``medgate gateway ...``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from medgate_gateway.commands import gateway_app
    from medgate_gateway.demo import demo

    app.command("demo")(demo)
    app.add_typer(gateway_app, name="gateway")
