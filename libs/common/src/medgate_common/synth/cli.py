"""``medgate synth``: write synthetic DICOM studies with their ground truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import Progress

from medgate_common.synth.dicom_writer import TRANSFER_SYNTAXES
from medgate_common.synth.profiles import PROFILES
from medgate_common.synth.study import MODALITIES, generate_study, write_dataset


def synth(
    out: Path = typer.Option(..., "--out", help="Output directory (created)"),
    studies: int = typer.Option(1, "--studies", min=1, help="Number of studies"),
    modality: str = typer.Option("CT", "--modality", help="CT or MR"),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes the same bytes"),
    profile: str = typer.Option("site-a", "--profile", help=f"Scanner/site profile: {', '.join(PROFILES)}"),
    slices: int = typer.Option(64, "--slices", min=1, max=1024),
    matrix: int = typer.Option(256, "--matrix", min=16, max=1024, help="Rows = columns"),
    max_lesions: int = typer.Option(4, "--max-lesions", min=0, max=12),
    transfer_syntax: str = typer.Option("explicit", "--transfer-syntax", help=", ".join(TRANSFER_SYNTAXES)),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON"),
) -> None:
    """Write STUDIES synthetic studies (DICOM series, label maps, study.json) under OUT."""
    modality = modality.upper()
    if modality not in MODALITIES:
        raise typer.BadParameter(f"choose one of {', '.join(MODALITIES)}", param_hint="--modality")
    if profile not in PROFILES:
        raise typer.BadParameter(f"choose one of {', '.join(PROFILES)}", param_hint="--profile")
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise typer.BadParameter(f"choose one of {', '.join(TRANSFER_SYNTAXES)}", param_hint="--transfer-syntax")
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, object]] = []
    started = time.perf_counter()
    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task(f"writing {studies} {modality} studies", total=studies)
        for index in range(studies):
            study = generate_study(modality, seed, index, profile, slices, matrix, max_lesions)
            study_dir = out / f"study-{index:04d}"
            truth = write_dataset(study, study_dir, transfer_syntax)
            entries.append(
                {
                    "dir": study_dir.name,
                    "study_instance_uid": truth["study_instance_uid"],
                    "series_instance_uid": truth["series_instance_uid"],
                    "files": truth["files"],
                    "lesion_count": truth["lesion_count"],
                }
            )
            progress.advance(task)
    manifest = {
        "generator": "medgate synth",
        "modality": modality,
        "seed": seed,
        "profile": profile,
        "slices": slices,
        "matrix": matrix,
        "transfer_syntax": transfer_syntax,
        "studies": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    elapsed = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps(manifest | {"seconds": round(elapsed, 3)}))
        return
    for e in entries:
        typer.echo(f"{out / str(e['dir'])}: {e['files']} instances, {e['lesion_count']} lesion(s)")
    typer.echo(f"wrote {studies} {modality} studies in {elapsed:.2f} s; manifest: {out / 'manifest.json'}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
