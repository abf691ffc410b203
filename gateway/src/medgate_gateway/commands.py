"""``medgate gateway migrate|serve|listen|user add|apikey add``."""

from __future__ import annotations

import signal
import threading

import typer

from medgate_common.schemas.workflow import GATEWAY_QUEUE
from medgate_common.tasking.cli import worker_options_command
from medgate_gateway.settings import GatewaySettings

gateway_app = typer.Typer(help="The gateway: database, DICOM listener, DICOMweb and users.", no_args_is_help=True)
user_app = typer.Typer(help="Bootstrap users and API keys.", no_args_is_help=True)
gateway_app.add_typer(user_app, name="user")


@gateway_app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from medgate_gateway.db.migrate import migrate as run

    settings = GatewaySettings()
    run(settings.resolved_database_url())
    typer.echo("database is at the latest schema")


@gateway_app.command()
def serve(
    host: str = typer.Option(None, "--host", help="HTTP bind address (default: MEDGATE_GW_HTTP_HOST)"),
    port: int = typer.Option(None, "--port", help="HTTP port (default: MEDGATE_GW_HTTP_PORT)"),
    listener: bool = typer.Option(True, "--listener/--no-listener", help="Also run the DICOM listener"),
) -> None:
    """Run the HTTP API and DICOMweb (and, by default, the DICOM listener) in one process."""
    import uvicorn

    from medgate_gateway.listener.workers import ensure_multiprocess_metrics
    from medgate_gateway.main import create_app

    settings = GatewaySettings()
    if listener:
        ensure_multiprocess_metrics(settings)
    app = create_app(settings, with_listener=listener)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        # open job-event streams never end by themselves; do not let them hold a shutdown
        timeout_graceful_shutdown=10,
    )


@gateway_app.command()
def listen() -> None:
    """Run only the DICOM C-STORE/C-ECHO listener (and the study-completeness sweeper)."""
    from medgate_gateway.context import GatewayContext
    from medgate_gateway.listener import DicomListener
    from medgate_gateway.listener.workers import WorkerPool

    settings = GatewaySettings()
    context = GatewayContext.build(settings)
    server = DicomListener(context.ingestor, settings, reuse_port=settings.dicom_workers > 1)
    server.start()
    workers = WorkerPool(settings, server.port)
    workers.start()
    context.start_background()
    where = f"{settings.dicom_host}:{server.port}"
    typer.echo(f"listening as {settings.ae_title} on {where} ({settings.dicom_workers} process(es))")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    workers.stop()
    server.stop()
    context.close()


@user_app.command("add")
def user_add(
    username: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="radiologist, technologist, admin, service or site"),
    full_name: str = typer.Option("", "--full-name"),
    password: str = typer.Option(
        "", "--password", envvar="MEDGATE_NEW_PASSWORD", help="For people; prompted when omitted", show_default=False
    ),
    api_key: bool = typer.Option(False, "--api-key", help="Also create an API key and print it once"),
) -> None:
    """Create a user (the first admin included): people get a password, services an API key."""
    from medgate_gateway.auth.roles import PEOPLE, Role
    from medgate_gateway.auth.users import create_api_key, create_user
    from medgate_gateway.context import GatewayContext

    context = GatewayContext.build(GatewaySettings())
    try:
        if role in {r.value for r in PEOPLE} and not password:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        create_user(context.db, username, role, password, full_name)
        typer.echo(f"created {Role(role).value} {username}")
        if api_key or role not in {r.value for r in PEOPLE}:
            typer.echo(f"API key (shown once): {create_api_key(context.db, username, name='cli')}")
    finally:
        context.close()


@user_app.command("apikey")
def user_apikey(
    username: str = typer.Argument(...),
    name: str = typer.Option("", "--name"),
    days: int = typer.Option(0, "--days", help="Expire after this many days (0: never)"),
) -> None:
    """Create another API key for an existing user and print it once."""
    from medgate_gateway.auth.users import create_api_key
    from medgate_gateway.context import GatewayContext

    context = GatewayContext.build(GatewaySettings())
    try:
        typer.echo(create_api_key(context.db, username, name=name, expires_in_days=days or None))
    finally:
        context.close()


worker_options_command(
    gateway_app,
    name="worker",
    help_text="Consume the gateway queue: step events and result assembly (distributed mode).",
    queues=GATEWAY_QUEUE,
    modules=["medgate_gateway.workflow.tasks"],
)
