"""``medgate bench pipeline``: what the workflow costs around the steps, and that it loses nothing.

The distributed mode runs as deployed (gateway process with sweeper and watchdog, a gateway
worker, one worker per model queue, a private redis-server, PostgreSQL), with each model
step replaced by a calibrated CPU workload of ``--step-seconds``. N studies become ready at
the same instant; each job's end-to-end latency (job created → final state) is compared
with the compute its steps measured themselves:

    orchestration overhead = end-to-end latency ÷ sum of the job's step compute times

The baseline is therefore the same steps called back to back in one process with nothing in
between (ratio 1.0). Because segmentation and reasoning run in parallel on separate
workers, a ratio below 1 is possible. With many studies at once, latency is mostly waiting
for a free core, so two more numbers separate the workflow's own cost from queueing:
hand-off (latency minus the time the job's critical-path steps ran) and efficiency
(throughput ÷ the ceiling of every core busy with step compute). Reported per batch size:
completed / lost / duplicated (a step executed or recorded twice), throughput, p50/p95
latency, overhead, hand-off, efficiency; mean ± std over ``--repeat`` batches.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import update

from medgate_common.postgres import postgres_database
from medgate_common.schemas import JobState, JobStatus
from medgate_gateway.bench.orthanc import free_port
from medgate_gateway.bench.stack import DistributedStack, RedisServer
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, Study
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.views import job_state


def make_studies(
    context: GatewayContext, n: int, instances: int, *, description: str | None = None, actor: str = "bench"
) -> list[str]:
    """N small CT studies (pydicom's CT_small under fresh UIDs), indexed but not yet due.

    ``description`` replaces the series description (the workload rejects ``REJECT``).
    """
    import io

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from medgate_gateway.ingest.ingestor import Source

    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    if description is not None:
        template.SeriesDescription = description
    uids: list[str] = []
    for _ in range(n):
        study, series = generate_uid(), generate_uid()
        for number in range(1, instances + 1):
            template.StudyInstanceUID, template.SeriesInstanceUID = study, series
            template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            template.InstanceNumber = number
            buffer = io.BytesIO()
            template.save_as(buffer, enforce_file_format=True)
            context.ingestor.ingest(buffer.getvalue(), Source(transport="stow", actor=actor))
        uids.append(str(study))
    return uids


def run_batch(
    stack: DistributedStack, context: GatewayContext, n: int, instances: int, timeout: float, step_seconds: float
) -> dict[str, Any]:
    studies = make_studies(context, n, instances)
    log_path = Path(stack.extra_env["MEDGATE_WORKLOAD_LOG"])
    log_path.write_text("")
    # all N due at the same instant: the next sweep claims them together
    with context.db.write() as session:
        session.execute(update(Study).where(Study.study_uid.in_(studies)).values(ready_due_at=dt.datetime.now(dt.UTC)))
    deadline = time.monotonic() + timeout
    while True:
        with context.db.read() as session:
            jobs = [job_state(session, j) for j in session.query(Job).join(Study).filter(Study.study_uid.in_(studies))]
        if len(jobs) == n and all(j.status.terminal for j in jobs):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    executions: dict[tuple[str, str], int] = {}
    for line in log_path.read_text().splitlines():
        entry = json.loads(line)
        key = (entry["job_id"], entry["step"])
        executions[key] = executions.get(key, 0) + 1
    done = [j for j in jobs if j.status is JobStatus.review_ready]
    latencies = [((j.finished_at or j.updated_at) - j.created_at).total_seconds() for j in done]
    # Compute per job: the CPU seconds each model step burns (the workload measures its own
    # process time, so contention on a busy machine does not inflate it) plus assembly.
    compute = [3 * step_seconds + sum(s.duration_s or 0.0 for s in j.steps if s.name == "assemble") for j in done]
    overheads = [lat / c for lat, c in zip(latencies, compute, strict=True) if c > 0]
    handoffs = [lat - critical_path(j) for lat, j in zip(latencies, done, strict=True)]
    duplicated_jobs = {
        j.job_id
        for j in jobs
        if any(s.duplicates for s in j.steps) or any(executions.get((j.job_id, s.name), 0) > 1 for s in j.steps)
    }
    start = min(j.created_at for j in jobs) if jobs else None
    end = max((j.finished_at or j.updated_at) for j in done) if done else None
    span = (end - start).total_seconds() if start and end else float("nan")
    return {
        "studies": n,
        "completed": len(done),
        "lost": n - len([j for j in jobs if j.status.terminal]),
        "failed": len([j for j in jobs if j.status is JobStatus.failed]),
        "duplicated": len(duplicated_jobs),
        "throughput_jobs_per_s": len(done) / span if span > 0 else float("nan"),
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        "step_compute_per_job_s": statistics.fmean(compute) if compute else float("nan"),
        "overhead_p50": _quantile(overheads, 0.5),
        "overhead_p95": _quantile(overheads, 0.95),
        "handoff_p50_s": _quantile(handoffs, 0.5),
        # the best any orchestrator could do: every core busy with step compute
        "efficiency": (len(done) / span) / ((os.cpu_count() or 1) / statistics.fmean(compute))
        if compute and span > 0
        else float("nan"),
    }


def critical_path(job: JobState) -> float:
    """Seconds the job's steps spent running on its critical path (iqa, the slower branch, assembly).

    What is left of the latency is hand-off: queue waits, messages, database transactions.
    """
    wall = {
        s.name: (s.finished_at - s.started_at).total_seconds() if s.finished_at and s.started_at else 0.0
        for s in job.steps
    }
    return (
        wall.get("iqa", 0.0)
        + max(wall.get("segmentation", 0.0), wall.get("reasoning", 0.0))
        + wall.get("assemble", 0.0)
    )


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of the counts and mean ± std of the timings over repeated batches of one size."""
    row: dict[str, Any] = {"studies": runs[0]["studies"], "repeats": len(runs)}
    for key in ("completed", "lost", "failed", "duplicated"):
        row[key] = sum(r[key] for r in runs)
    for key in (
        "throughput_jobs_per_s",
        "latency_p50_s",
        "latency_p95_s",
        "step_compute_per_job_s",
        "overhead_p50",
        "overhead_p95",
        "handoff_p50_s",
        "efficiency",
    ):
        values = [float(r[key]) for r in runs]
        row[key] = statistics.fmean(values)
        row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return row


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def pipeline(
    studies: int = typer.Option(50, "--studies", "-n", help="Largest batch: N studies ready at once"),
    sizes: str = typer.Option("1,10", "--sizes", help="Smaller batches run first (N=1 gives the base overhead)"),
    step_seconds: float = typer.Option(0.2, "--step-seconds", help="CPU seconds each model step burns"),
    instances: int = typer.Option(4, "--instances", help="Instances per study"),
    pg_admin: str = typer.Option(
        "postgresql://postgres@127.0.0.1:5432/postgres", "--pg-admin", help="Creates and drops a throw-away database"
    ),
    sqlite: bool = typer.Option(False, "--sqlite", help="Use SQLite instead of PostgreSQL"),
    repeat: int = typer.Option(3, "--repeat", min=1, help="Batches of each size (mean ± std over them)"),
    timeout: float = typer.Option(600.0, "--timeout", help="Give up on a batch after this many seconds"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON here"),
) -> None:
    """Submit N studies at once to the distributed workflow; report losses, duplicates, overhead."""
    batch_sizes = sorted({int(s) for s in sizes.split(",") if s.strip()} | {studies})
    with tempfile.TemporaryDirectory(prefix="medgate-bench-pipeline-") as tmp:
        home = Path(tmp)
        redis = RedisServer(home / "redis")
        redis.start()
        try:
            with _database(pg_admin, sqlite, home) as database_url:
                rows = _run(home, redis, database_url, batch_sizes, repeat, step_seconds, instances, timeout, as_json)
        finally:
            redis.stop()
    report = {
        "benchmark": "pipeline",
        "mode": "distributed: gateway serve + gateway worker + one worker per model queue, redis-server",
        "database": "sqlite" if sqlite else "postgresql",
        "step_seconds": step_seconds,
        "cpu_count": os.cpu_count(),
        "instances_per_study": instances,
        "repeats": repeat,
        "batches": rows,
    }
    text = json.dumps(report, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    if as_json:
        typer.echo(text)
        return
    typer.echo(f"{repeat} batch(es) per size; timings are mean ± std over batches")
    typer.echo(
        f"{'N':>4} {'done':>5} {'lost':>5} {'dup':>4} {'jobs/s':>12} {'p50 s':>12} {'p95 s':>12} "
        f"{'overhead':>12} {'hand-off s':>12} {'efficiency':>12}"
    )
    for r in rows:
        cells = [
            f"{r[key]:.2f}±{r[key + '_std']:.2f}"
            for key in (
                "throughput_jobs_per_s",
                "latency_p50_s",
                "latency_p95_s",
                "overhead_p50",
                "handoff_p50_s",
                "efficiency",
            )
        ]
        counts = f"{r['studies']:>4} {r['completed']:>5} {r['lost']:>5} {r['duplicated']:>4}"
        typer.echo(counts + "".join(f" {c:>12}" for c in cells))


@contextmanager
def _database(pg_admin: str, sqlite: bool, home: Path) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{home / 'gateway.db'}"
        return
    with postgres_database(pg_admin, "medgate_bench") as url:
        yield url


def _run(
    home: Path,
    redis: RedisServer,
    database_url: str,
    batch_sizes: list[int],
    repeat: int,
    step_seconds: float,
    instances: int,
    timeout: float,
    quiet: bool,
) -> list[dict[str, Any]]:
    settings = GatewaySettings(
        home=home / "home",
        database_url=database_url,
        broker_url=redis.url,
        http_port=free_port(),
        stable_seconds=3600,  # studies wait until the benchmark makes them due together
        sweep_interval_seconds=0.1,
        log_level="WARNING",
        token_secret="b" * 40,
    )
    extra = {"MEDGATE_WORKLOAD_SECONDS": str(step_seconds), "MEDGATE_WORKLOAD_LOG": str(home / "executions.jsonl")}
    stack = DistributedStack(settings, extra_env=extra)
    stack.start()
    context = GatewayContext.build(settings.model_copy(update={"workflow": False}), run_migrations=False)
    rows = []
    try:
        run_batch(stack, context, 2, instances, timeout, step_seconds)  # warm-up: imports, connections, first forks
        for n in batch_sizes:
            runs = []
            for i in range(repeat):
                run = run_batch(stack, context, n, instances, timeout, step_seconds)
                runs.append(run)
                if not quiet:
                    typer.echo(
                        f"N={n} #{i + 1}: {run['completed']} done, overhead p50 {run['overhead_p50']:.2f}", err=True
                    )
            rows.append(summarize(runs))
    finally:
        stack.stop()
        context.close()
    return rows


def register_bench(bench: typer.Typer) -> None:
    bench.command("pipeline")(pipeline)
