"""``medgate demo``, the main job: a synthetic study goes through the whole embedded gateway.

It generates a study, starts the embedded mode (``medgate up`` without HTTP: SQLite
database, SQLite broker and file storage under ``$MEDGATE_HOME``, one workflow worker
process), sends the series with a real C-STORE association, waits until the study is
ready (quiet for ``--quiet`` seconds), follows the workflow job step by step to its end and
prints a summary. Steps whose service is not installed yet say so; nothing is invented.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pydicom
import typer
from pynetdicom import AE
from sqlalchemy import select

from medgate_common.dicom import load_series
from medgate_common.schemas import JobState, JobStatus, StepStatus
from medgate_common.settings import MedgateSettings
from medgate_common.synth import generate_study, write_dataset
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, Study
from medgate_gateway.embedded import EmbeddedStack
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.views import load_job, updates_after


def send_series(files: list[Path], port: int, calling_ae: str = "DEMO-CT") -> list[int]:
    """C-STORE every file over one association; returns the DIMSE statuses."""
    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title=calling_ae)
    for sop_class, ts in {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}:
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDGATE")
    if not assoc.is_established:
        raise RuntimeError("the gateway refused the association")
    sock = assoc.dul.socket.socket if assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def study_counts(context: GatewayContext, study_uid: str) -> tuple[int, int, str]:
    with context.db.read() as session:
        row = session.execute(
            select(Study.num_series, Study.num_instances, Study.state).where(Study.study_uid == study_uid)
        ).one()
    return int(row[0]), int(row[1]), str(row[2])


def describe_truth(truth: dict[str, object], files: list[Path], target: Path, generated: float) -> None:
    volume = load_series(files)
    typer.echo(f"Synthetic {truth['modality']} study written to {target} in {generated:.2f} s")
    typer.echo(f"  Study Instance UID  {truth['study_instance_uid']}")
    typer.echo(f"  Series              {len(files)} instances, {volume.shape[1]}x{volume.shape[2]} pixels")
    sz, sy, sx = volume.spacing
    typer.echo(f"  Voxel spacing       {sx:.3f} x {sy:.3f} x {sz:.3f} mm (col x row x slice)")
    typer.echo(f"  Ground truth        {truth['lesion_count']} lesion(s), labels in labels/, study.json")
    for lesion in truth["lesions"]:  # type: ignore[attr-defined]
        x, y, z = lesion["centroid_lps_mm"]
        typer.echo(
            f"    lesion {lesion['lesion_id']}: {lesion['organ']}, {lesion['volume_ml']:.2f} mL, "
            f"centre ({x:.0f}, {y:.0f}, {z:.0f}) mm LPS, images {lesion['slice_range'][0]}-{lesion['slice_range'][1]}"
        )


def ready_count(context: GatewayContext, study_uid: str) -> int:
    with context.db.read() as session:
        count = session.scalar(select(Study.ready_count).where(Study.study_uid == study_uid))
    return int(count or 0)


def wait_for_job(context: GatewayContext, study_uid: str, before: int, timeout: float) -> str:
    """The job of this arrival of the study (or a re-run, if every instance was a duplicate)."""
    assert context.workflow is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with context.db.read() as session:
            study = session.execute(select(Study).where(Study.study_uid == study_uid)).scalar_one()
            job_id = session.scalar(
                select(Job.id).where(Job.study_fk == study.id, Job.times_ready == study.ready_count)
            )
        if study.ready_count > before and job_id is not None:
            return job_id
        if study.state == "ready" and study.ready_count == before:
            # Sent before: duplicates do not re-open a study, so ask for a new run.
            return context.workflow.reprocess(study_uid, actor="demo")
        time.sleep(0.1)
    typer.echo("The study did not become ready in time", err=True)
    raise typer.Exit(code=1)


def follow_job(context: GatewayContext, job_id: str, timeout: float) -> JobState:
    """Print each transition of the job as it happens; return its final state."""
    after = 0
    started = time.monotonic()
    while True:
        with context.db.read() as session:
            updates = updates_after(session, after, job_id=job_id)
            state = load_job(session, job_id)
        assert state is not None
        for update in updates:
            after = update.event_id
            what = f"{update.step:<13}" if update.step else "job          "
            detail = f"  ({update.detail})" if update.detail else ""
            typer.echo(f"  {time.monotonic() - started:6.2f} s  {what} {update.status}{detail}")
        if state.status.terminal:
            return state
        if time.monotonic() - started > timeout:
            typer.echo(f"The job did not finish within {timeout:.0f} s", err=True)
            raise typer.Exit(code=1)
        time.sleep(0.1)


def _gate_text(result: dict[str, object]) -> str:
    """The gate's verdict, what it found per series, and the first series' reasoning."""
    text = f"verdict {result.get('verdict')}"
    series = result.get("series")
    if isinstance(series, list) and series and isinstance(series[0], dict):
        findings = [
            f"{f.get('severity')} {f.get('attribute')}"
            for s in series
            for f in s.get("findings", [])
            if isinstance(f, dict)
        ]
        text += f" ({', '.join(findings) if findings else 'no artifact found'})"
        reasoning = series[0].get("reasoning")
        if reasoning:
            text += f"\n{'':16}{reasoning}"
    return text


def _lesions_text(result: dict[str, object]) -> str:
    """Lesions per segmented series (volume and fragments), whether a SEG was written, and
    the series that could not be segmented."""
    parts = []
    for series in result.get("series", []) or []:  # type: ignore[attr-defined]
        lesions = series.get("lesions", [])
        sizes = ", ".join(
            f"{x['volume_ml']:.1f} mL" + (f" ({x['components']} parts)" if x["components"] > 1 else "") for x in lesions
        )
        parts.append(
            f"{len(lesions)} lesion(s)"
            + (f": {sizes}" if sizes else "")
            + ("; DICOM SEG written" if series.get("seg_uri") else "")
        )
    for skipped in result.get("not_segmented", []) or []:  # type: ignore[attr-defined]
        parts.append(f"not segmented [{skipped.get('code')}] {skipped.get('reason')}")
    return "; ".join(parts) or "no series segmented"


def summarize(state: JobState) -> list[str]:
    lines = [f"Job {state.job_id}: {state.status.value}" + (f" ({state.error})" if state.error else "")]
    labels = {"iqa": "Quality gate", "segmentation": "Lesions", "reasoning": "Report", "assemble": "Results"}
    for step in state.steps:
        label = labels.get(step.name, step.name)
        if step.status is StepStatus.not_installed:
            text = f"not installed: {step.error_detail}"
        elif step.status is StepStatus.skipped:
            text = f"skipped ({step.error_detail or 'not routed to this step'})"
        elif step.status is StepStatus.failed:
            text = f"failed [{step.error_code}] {step.error_detail}"
        elif step.name == "iqa" and step.result:
            text = _gate_text(step.result)
        elif step.name == "segmentation" and step.result:
            text = _lesions_text(step.result)
        elif step.name == "assemble" and step.result is not None:
            derived = step.result.get("derived_instances", [])
            stored = len(step.result.get("results", []))
            text = f"{stored} result(s) stored, {len(derived)} derived object(s) indexed"
        else:
            text = step.status.value
        took = f" in {step.duration_s:.2f} s" if step.status is StepStatus.done and step.duration_s else ""
        head, _, rest = text.partition("\n")  # the duration goes on the step's own line
        lines.append(f"  {label:<13} {head}{took}" + (f"\n{rest}" if rest else ""))
    return lines


def demo(
    out: Path | None = typer.Option(None, "--out", help="Where to write (default: $MEDGATE_HOME/demo)"),
    modality: str = typer.Option("CT", "--modality"),
    seed: int = typer.Option(7, "--seed"),
    quiet: float = typer.Option(2.0, "--quiet", help="Seconds without new instances before the study is ready"),
    timeout: float = typer.Option(300.0, "--timeout", help="Give up on the workflow after this many seconds"),
) -> None:
    """Generate a synthetic study, send it over DICOM to the embedded gateway, follow its workflow."""
    home = MedgateSettings().home
    target = out or home / "demo"
    started = time.perf_counter()
    study = generate_study(modality.upper(), seed=seed, index=0)
    truth = write_dataset(study, target / "study-0000")
    files = sorted((target / "study-0000" / "dicom").glob("*.dcm"))
    describe_truth(truth, files, target / "study-0000", time.perf_counter() - started)
    study_uid = str(truth["study_instance_uid"])

    settings = GatewaySettings(
        home=home,
        dicom_host="127.0.0.1",
        dicom_port=0,
        stable_seconds=quiet,
        sweep_interval_seconds=0.2,
        watchdog_interval_seconds=1.0,
    )
    stack = EmbeddedStack(settings, http=False)
    booted = time.perf_counter()
    stack.start()
    assert stack.context is not None
    assert stack.worker is not None
    typer.echo(
        f"Embedded gateway up in {time.perf_counter() - booted:.1f} s: listener {settings.ae_title}@127.0.0.1:"
        f"{stack.dicom_port}, workflow worker pid {stack.worker.pid}, broker {settings.resolved_broker_url()}"
    )
    try:
        before = ready_count(stack.context, study_uid)
        sent = time.perf_counter()
        statuses = send_series(files, stack.dicom_port)
        elapsed = time.perf_counter() - sent
        failed = [s for s in statuses if s != 0]
        typer.echo(
            f"Sent over C-STORE: {len(statuses) - len(failed)} accepted, {len(failed)} failed, "
            f"{len(statuses) / elapsed:.0f} instances/s; waiting for {quiet:.0f} s of quiet"
        )
        job_id = wait_for_job(stack.context, study_uid, before, quiet + 30)
        typer.echo(f"Workflow job {job_id}:")
        state = follow_job(stack.context, job_id, timeout)
        n_series, n_instances, _ = study_counts(stack.context, study_uid)
    finally:
        stack.stop()
    for line in summarize(state):
        typer.echo(line)
    (target / "job.json").write_text(state.model_dump_json(indent=2) + "\n")
    typer.echo("Where to look:")
    typer.echo(f"  study       {n_series} series, {n_instances} instances")
    typer.echo(f"  files       {settings.resolved_storage_uri()}")
    typer.echo(f"  index       {settings.resolved_database_url()}")
    typer.echo(f"  job         {target / 'job.json'} (or: medgate workflow jobs)")
    typer.echo(f"  live        `medgate up`, then http://127.0.0.1:{settings.http_port}/api/v1/jobs/{job_id}")
    summary = {
        "study": study_uid,
        "job": job_id,
        "status": state.status.value,
        "stored": n_instances,
        "failed": len(failed),
        "steps": {s.name: s.status.value for s in state.steps},
    }
    (target / "demo.json").write_text(json.dumps(summary) + "\n")
    if failed or state.status in (JobStatus.failed,):
        raise typer.Exit(code=1)
