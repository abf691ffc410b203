"""``medgate vlm train | eval``: the grounded VQA model and its experiment.

Imported lazily by :mod:`medgate_vlm.cli`, so ``medgate --help`` does not load torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

RESULTS = Path("docs/results/vqa")


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        seed: int = typer.Option(0),
        epochs: int = typer.Option(14),
        studies: int = typer.Option(160, help="Training studies (generator seed 8100)."),
        test_studies: int = typer.Option(80, help="Held-out test studies (generator seed 8300)."),
        out: Path = typer.Option(None, help="Folder for vqa.{onnx,pt,json} (default: the package's weights folder)."),
        runs: Path = typer.Option(RESULTS, help="Also record this run in the experiment's cache here."),
    ) -> None:
        """Train the served model, score it on held-out seeds, export it to ONNX with its card."""
        from medgate_vlm.core.vqa import package_weights_dir
        from medgate_vlm.training.model import train_served_model

        card = train_served_model(out or package_weights_dir(), seed, epochs, studies, test_studies, runs=runs)
        typer.echo(json.dumps({**card["test_metrics"], **card["served_test_metrics"]}, indent=2))  # type: ignore[dict-item]

    @app.command("eval")
    def eval_cmd(
        seeds: int = typer.Option(2, help="Seeds per variant (0, 1, …)."),
        epochs: int = typer.Option(14),
        studies: int = typer.Option(160),
        test_studies: int = typer.Option(80),
        workers: int = typer.Option(2, help="Runs in parallel (one torch thread each)."),
        out: Path = typer.Option(RESULTS, help="Folder for runs/*.json and summary.md."),
        weights: Path = typer.Option(None, help="Instead: score this weights folder through the serving path."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Grounded model vs the global-features-only ablation, ``seeds`` seeds each (mean ± std)."""
        if weights is not None:
            from medgate_ml.vqa.data import evaluation_set
            from medgate_vlm.core.vqa import load_vqa
            from medgate_vlm.training.served import score_served

            typer.echo(json.dumps(score_served(load_vqa(weights), evaluation_set(test_studies)), indent=2))
            return
        from medgate_vlm.training.experiment import RunSpec, run_all, summary_table

        # The grounded seed-0 run last: `medgate vlm train` (same spec) may record it meanwhile.
        specs = [RunSpec(s, False, epochs, studies, test_studies) for s in range(seeds)]
        specs += [RunSpec(s, True, epochs, studies, test_studies) for s in (*range(1, seeds), 0)]
        results = run_all(specs, out, workers)
        if as_json:
            typer.echo(json.dumps(results, indent=2))
            return
        table = summary_table(results)
        (out / "summary.md").write_text(table + "\n")
        typer.echo(table)
