"""``medgate iqa`` commands of this service."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medgate_common.tasking.cli import worker_options_command

app = typer.Typer(help="Image-quality service.", no_args_is_help=True)
worker_options_command(
    app, name="worker", help_text="Consume the iqa queue.", queues="iqa", modules=["medgate_iqa.tasks"]
)

WEIGHTS = Path(__file__).parent / "weights"
CACHE = Path.home() / ".medgate" / "cache"


@app.command("train")
def train_command(
    out: Path = typer.Option(WEIGHTS, help="Folder for quality.onnx, quality.pt and quality.json"),
    samples: int = typer.Option(16000, help="Training samples to generate"),
    epochs: int = typer.Option(18),
    width: int = typer.Option(24, help="Channels of the first stage"),
    seed: int = typer.Option(0),
    workers: int = typer.Option(2, help="Processes generating samples"),
    version: str = typer.Option("1.0.0"),
    cache: Path = typer.Option(CACHE, help="Where generated samples are kept"),
) -> None:
    """Generate degraded samples, train the quality network, export and check ONNX."""
    from medgate_iqa.training.train import TrainConfig, train

    config = TrainConfig(samples=samples, epochs=epochs, width=width, seed=seed, workers=workers)
    card = train(config, out, version, cache=cache)
    typer.echo(json.dumps(card["metrics"], indent=2))


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8101),
) -> None:
    """Run the HTTP API (/v1/assess, /v1/perception, /v1/compare, /healthz, /metrics)."""
    from medgate_iqa.main import serve

    serve(host=host, port=port)


@app.command("bench")
def bench_command(
    seed: int = typer.Option(0, help="Seed of the generated items"),
    images: int = typer.Option(240, help="Held-out images per modality"),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full results as JSON here"),
    weights: Path | None = typer.Option(None, help="Model folder (default: the packaged weights)"),
) -> None:
    """MiniMedQ: perception MCQs and reasoning on held-out seeds and real images, with
    chance and statistics-only baselines in the same run."""
    from medgate_iqa.bench.run import run_bench

    run_bench(seed=seed, images=images, json_out=json_out, weights=weights)


@app.command("speed")
def speed_command(
    weights: Path = typer.Option(WEIGHTS, help="Folder with quality.onnx, quality.pt and quality.json"),
    rounds: int = typer.Option(7),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON here"),
) -> None:
    """Time the quality network per slice in ONNX Runtime and in torch, in the same run."""
    from medgate_iqa.training.speed import measure

    result = measure(weights, rounds=rounds)
    for row in result["rows"]:  # type: ignore[attr-defined]
        typer.echo(
            f"batch {row['batch']:>3}: onnxruntime {row['onnxruntime_ms_per_slice']:.2f} ms/slice, "
            f"torch {row['torch_ms_per_slice']:.2f} ms/slice, ORT / torch = {row['ratio_ort_over_torch']:.2f}"
        )
    typer.echo(f"largest |ONNX - torch| = {result['max_abs_diff']:.2e}")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="iqa")
