"""``medgate up`` (the embedded mode) and ``medgate workflow plan|jobs|retry``."""

from __future__ import annotations

import signal
import threading

import typer

from medgate_gateway.workflow.plan_cli import add_plan_command

workflow_app = typer.Typer(help="The study workflow: routing dry-runs, jobs, retries.", no_args_is_help=True)
add_plan_command(workflow_app)


@workflow_app.command("jobs")
def jobs(
    state: str = typer.Option("", "--state", help="Only jobs in this state"),
    sort: str = typer.Option("created", "--sort", help="created (newest first) or triage (most suspicious first)"),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the latest jobs (or the worklist by triage score) with the state of each step."""
    from medgate_common.errors import InputError
    from medgate_gateway.context import GatewayContext
    from medgate_gateway.settings import GatewaySettings
    from medgate_gateway.workflow.views import list_jobs

    context = GatewayContext.build(GatewaySettings(workflow=False))
    try:
        with context.db.read() as session:
            found = list_jobs(session, state=state or None, sort=sort, limit=limit)
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sort") from None
    finally:
        context.close()
    if as_json:
        typer.echo("[" + ",".join(j.model_dump_json() for j in found) + "]")
        return
    for job in found:
        steps = "  ".join(f"{s.name}:{s.status.value}" for s in job.steps)
        triage = f"triage {job.triage_score:.2f}" if job.triage_score is not None else "triage -   "
        typer.echo(f"{job.job_id}  {job.status.value:<16} run {job.run}  {triage}  {steps}  {job.error_code or ''}")


@workflow_app.command("retry")
def retry(job_id: str = typer.Argument(...)) -> None:
    """Run a failed job again (what ended well keeps its result)."""
    from medgate_gateway.context import GatewayContext
    from medgate_gateway.settings import GatewaySettings

    context = GatewayContext.build(GatewaySettings())
    try:
        assert context.workflow is not None
        sent = context.workflow.retry(job_id, actor="cli")
    finally:
        context.close()
    typer.echo(f"job {job_id} queued again ({sent} step(s) sent)")


def up(
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Worker pool processes"),
    http: bool = typer.Option(True, "--http/--no-http", help="Serve the HTTP API and DICOMweb"),
) -> None:
    """Run everything on this machine: gateway, DICOM listener, workflow worker (SQLite, no servers)."""
    from medgate_gateway.embedded import EmbeddedStack
    from medgate_gateway.settings import GatewaySettings

    settings = GatewaySettings()
    stack = EmbeddedStack(settings, concurrency=concurrency, http=http)
    try:
        stack.start()
    except BaseException:
        stack.stop()  # a half-started stack must not leave its worker running
        raise
    assert stack.worker is not None
    typer.echo(f"MedGate is up (home {settings.home})")
    typer.echo(f"  DICOM   {settings.ae_title} @ {settings.dicom_host}:{stack.dicom_port}")
    if http:
        typer.echo(f"  HTTP    http://{settings.http_host}:{settings.http_port}  (API /docs, jobs /api/v1/jobs)")
    typer.echo(f"  broker  {settings.resolved_broker_url()}")
    typer.echo(f"  worker  pid {stack.worker.pid}, log {stack.worker.log_path}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    typer.echo("stopping…")
    stack.stop()
