"""``medgate seg train | eval | ablate | speed``: the BARL experiment and the served model.

Imported lazily by :mod:`medgate_seg.cli`, so ``medgate --help`` does not load torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

RESULTS = Path("docs/results/barl")


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        method: str = typer.Option("barl", help="supervised | mean_teacher | cps | barl"),
        labelled: float = typer.Option(0.10, help="Labelled fraction of the 80 training volumes (1.0 = all)."),
        seed: int = typer.Option(0),
        iterations: int = typer.Option(2000),
        out: Path = typer.Option(
            None, help="Folder for lesion_seg.{onnx,pt,json} and MODEL_CARD.md [default: the package's weights/]."
        ),
    ) -> None:
        """Train one model, score it on the held-out test set, export it to ONNX with its card."""
        from medgate_seg.core.model import weights_dir
        from medgate_seg.training.model import train_served_model

        card = train_served_model(out or weights_dir(), method, labelled, seed, iterations)
        typer.echo(json.dumps(card["test_metrics"], indent=2))

    @app.command("eval")
    def eval_cmd(
        iterations: int = typer.Option(1000, help="Training iterations of every run."),
        workers: int = typer.Option(2, help="Runs in parallel (one torch thread each)."),
        out: Path = typer.Option(RESULTS, help="Folder for runs/*.json and the summary."),
        weights: Path = typer.Option(None, help="Instead: score this weights folder's ONNX model on the test set."),
        device: str = typer.Option(
            "cpu", help="Torch device the runs train on: cpu, or cuda (runs then share the GPU)."
        ),
        ratio: list[float] = typer.Option(None, help="Labelled fractions (repeatable; default 0.05 and 0.1)."),
    ) -> None:
        """Every method at 5 % and 10 % labels and 3 seeds, plus the fully supervised bound."""
        from medgate_seg.training.experiment import RATIOS, comparison_specs, write_summary

        if weights is not None:
            from medgate_seg.training.check import score_onnx

            typer.echo(json.dumps(score_onnx(weights), indent=2))
            return
        specs = comparison_specs(iterations, ratios=ratio or RATIOS)
        typer.echo(write_summary(specs, out, "comparison", workers, device))

    @app.command("ablate")
    def ablate_cmd(
        iterations: int = typer.Option(1000),
        workers: int = typer.Option(2),
        out: Path = typer.Option(RESULTS),
        device: str = typer.Option("cpu", help="Torch device the runs train on: cpu or cuda."),
    ) -> None:
        """BARL at 10 % labels with one component removed at a time (3 seeds), beside full BARL."""
        from medgate_seg.training.experiment import ablation_specs, comparison_specs, write_summary

        full = [s for s in comparison_specs(iterations) if s.method == "barl" and s.ratio == 0.10]
        typer.echo(write_summary(full + ablation_specs(iterations), out, "ablation", workers, device))

    @app.command("speed")
    def speed_cmd(
        rounds: int = typer.Option(5),
        out: Path = typer.Option(None, help="Write the JSON result here as well."),
    ) -> None:
        """ONNX Runtime vs torch on whole synthetic studies: seconds per study and the ratio."""
        from medgate_seg.training.speed import measure

        result = measure(rounds=rounds)
        text = json.dumps(result, indent=2)
        if out is not None:
            out.write_text(text + "\n")
        typer.echo(text)
