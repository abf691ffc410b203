"""``medgate demo``, the main job: a synthetic study travels into the gateway as from a PACS.

It generates a study, starts the gateway's DICOM listener on a free loopback port (SQLite
database and file storage under ``$MEDGATE_HOME``), sends the series with a real C-STORE
association, waits until the study is ready (quiet for ``--quiet`` seconds) and prints what
was stored. The workflow services join the demo as their issues land.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pydicom
import typer
from pynetdicom import AE
from sqlalchemy import select

from medgate_common.dicom import load_series
from medgate_common.settings import MedgateSettings
from medgate_common.synth import generate_study, write_dataset
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Study
from medgate_gateway.ingest.completeness import StudyReady
from medgate_gateway.listener import DicomListener
from medgate_gateway.settings import GatewaySettings


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


def demo(
    out: Path | None = typer.Option(None, "--out", help="Where to write (default: $MEDGATE_HOME/demo)"),
    modality: str = typer.Option("CT", "--modality"),
    seed: int = typer.Option(7, "--seed"),
    quiet: float = typer.Option(2.0, "--quiet", help="Seconds without new instances before the study is ready"),
) -> None:
    """Generate a synthetic study, send it to the gateway over DICOM and wait until it is ready."""
    home = MedgateSettings().home
    target = out or home / "demo"
    started = time.perf_counter()
    study = generate_study(modality.upper(), seed=seed, index=0)
    truth = write_dataset(study, target / "study-0000")
    generated = time.perf_counter() - started
    files = sorted((target / "study-0000" / "dicom").glob("*.dcm"))
    volume = load_series(files)
    typer.echo(f"Synthetic {truth['modality']} study written to {target / 'study-0000'} in {generated:.2f} s")
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

    settings = GatewaySettings(
        home=home, dicom_host="127.0.0.1", dicom_port=0, stable_seconds=quiet, sweep_interval_seconds=0.2
    )
    ready: list[StudyReady] = []
    done = threading.Event()

    def on_ready(event: StudyReady) -> None:
        if event.study_uid == truth["study_instance_uid"]:
            ready.append(event)
            done.set()

    context = GatewayContext.build(settings, on_ready=on_ready)
    listener = DicomListener(context.ingestor, settings)
    listener.start()
    context.tracker.start()
    try:
        sent = time.perf_counter()
        statuses = send_series(files, listener.port)
        elapsed = time.perf_counter() - sent
        failed = [s for s in statuses if s != 0]
        typer.echo(
            f"Sent over C-STORE to {settings.ae_title}@127.0.0.1:{listener.port}: "
            f"{len(statuses) - len(failed)} accepted, "
            f"{len(failed)} failed, {len(statuses) / elapsed:.0f} instances/s"
        )
        if done.wait(quiet + 10):
            n_series, n_instances = ready[0].num_series, ready[0].num_instances
            typer.echo(f"Study ready after {quiet:.0f} s of quiet ({n_series} series, {n_instances} instances)")
        else:
            # every instance was a duplicate of an earlier run: nothing re-opened the study
            n_series, n_instances, state = study_counts(context, str(truth["study_instance_uid"]))
            if state != "ready":
                typer.echo("The study did not become ready in time", err=True)
                raise typer.Exit(code=1)
            typer.echo(f"Study was already received and ready ({n_series} series, {n_instances} instances)")
    finally:
        listener.stop()
        context.close()
    typer.echo(f"  index {settings.resolved_database_url()}, files {settings.resolved_storage_uri()}")
    typer.echo("Next steps: the quality gate and AI services join this demo as their issues land.")
    summary = {"study": truth["study_instance_uid"], "seconds": generated, "stored": n_instances, "failed": len(failed)}
    (target / "demo.json").write_text(json.dumps(summary) + "\n")
    if failed:
        raise typer.Exit(code=1)
