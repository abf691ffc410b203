"""Gateway commands: ``medgate demo`` (the main job), ``medgate up``, ``medgate gateway ...``,
``medgate workflow ...``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from medgate_gateway.commands import gateway_app
    from medgate_gateway.demo import demo
    from medgate_gateway.workflow.commands import up, workflow_app

    app.command("demo")(demo)
    app.command("up")(up)
    app.add_typer(gateway_app, name="gateway")
    app.add_typer(workflow_app, name="workflow")
