"""Gateway commands: ``medgate demo`` (the main job) grows with every issue."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from medgate_common.dicom import load_series
from medgate_common.settings import MedgateSettings
from medgate_common.synth import generate_study, write_dataset


def demo(
    out: Path | None = typer.Option(None, "--out", help="Where to write (default: $MEDGATE_HOME/demo)"),
    modality: str = typer.Option("CT", "--modality"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Generate one synthetic study, read it back as a volume and show what was written."""
    settings = MedgateSettings()
    target = out or settings.home / "demo"
    started = time.perf_counter()
    study = generate_study(modality.upper(), seed=seed, index=0)
    truth = write_dataset(study, target / "study-0000")
    elapsed = time.perf_counter() - started
    files = sorted((target / "study-0000" / "dicom").glob("*.dcm"))
    volume = load_series(files)
    typer.echo(f"Synthetic {truth['modality']} study written to {target / 'study-0000'} in {elapsed:.2f} s")
    typer.echo(f"  Study Instance UID  {truth['study_instance_uid']}")
    typer.echo(f"  Series              {len(files)} instances, {volume.shape[1]}x{volume.shape[2]} pixels")
    sz, sy, sx = volume.spacing
    typer.echo(f"  Voxel spacing       {sx:.3f} x {sy:.3f} x {sz:.3f} mm (col x row x slice)")
    typer.echo(f"  Values              {volume.array.min():.0f} .. {volume.array.max():.0f}")
    typer.echo(f"  Ground truth        {truth['lesion_count']} lesion(s), labels in labels/, study.json")
    for lesion in truth["lesions"]:  # type: ignore[attr-defined]
        x, y, z = lesion["centroid_lps_mm"]
        typer.echo(
            f"    lesion {lesion['lesion_id']}: {lesion['organ']}, {lesion['volume_ml']:.2f} mL in "
            f"{lesion['components']} fragment(s), centre ({x:.0f}, {y:.0f}, {z:.0f}) mm LPS, "
            f"images {lesion['slice_range'][0]}-{lesion['slice_range'][1]}"
        )
    typer.echo("Next steps: the gateway, quality gate and AI services join this demo as their issues land.")
    (target / "demo.json").write_text(json.dumps({"study": truth["study_instance_uid"], "seconds": elapsed}) + "\n")


def register(app: typer.Typer) -> None:
    from medgate_gateway.commands import gateway_app

    app.command("demo")(demo)
    app.add_typer(gateway_app, name="gateway")
