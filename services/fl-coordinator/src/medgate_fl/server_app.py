"""The coordinator's ServerApp: builds the strategy from the run config and runs the rounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Result

from medgate_fl.data import num_classes
from medgate_fl.strategies import build_strategy
from medgate_fl.strategies.base import SiteStrategy
from medgate_fl.task import build_model

app = ServerApp()


def strategy_from(run: Mapping[str, object]) -> SiteStrategy:
    """The strategy named by ``strategy`` (default fedgsca), configured from the run config."""
    wire = run.get("wire-log")
    sites = int(run.get("min-sites", 2))  # type: ignore[call-overload]
    return build_strategy(
        str(run.get("strategy", "fedgsca")),
        min_sites=sites,
        min_replies=int(run.get("min-replies", 1)),  # type: ignore[call-overload]
        warmup_rounds=int(run.get("warmup-rounds", 1)),  # type: ignore[call-overload]
        proximal_mu=float(run.get("proximal-mu", 0.01)),  # type: ignore[arg-type]
        fraction_evaluate=float(run.get("fraction-evaluate", 1.0)),  # type: ignore[arg-type]
        wire_log=Path(str(wire)) if wire else None,
    )


def train_config_from(run: Mapping[str, object]) -> ConfigRecord:
    """What every train message carries from the run config (the strategy adds its own keys)."""
    config = ConfigRecord(
        {
            "lr": float(run.get("lr", 0.01)),  # type: ignore[arg-type]
            "local-epochs": int(run.get("local-epochs", 1)),  # type: ignore[call-overload]
            "thresholds": str(run.get("thresholds", "adaptive")),
            "loss": str(run.get("loss", "credal")),
        }
    )
    if run.get("per-class-norm"):
        config["per-class-norm"] = True
    return config


def run_strategy(
    grid: Grid,
    run: Mapping[str, object],
    evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
) -> tuple[SiteStrategy, Result]:
    """Build the strategy from ``run`` and drive its rounds on ``grid`` (real or in-process)."""
    strategy = strategy_from(run)
    model = build_model(num_classes(str(run.get("task", "multiclass"))), seed=int(run.get("seed", 0)))  # type: ignore[call-overload]
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=int(run.get("num-server-rounds", 2)),  # type: ignore[call-overload]
        timeout=float(run.get("round-timeout", 3600.0)),  # type: ignore[arg-type]
        train_config=train_config_from(run),
        evaluate_fn=evaluate_fn,
    )
    return strategy, result


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = dict(context.run_config)
    _, result = run_strategy(grid, run)
    out = run.get("out-dir")
    if out:
        Path(str(out)).mkdir(parents=True, exist_ok=True)
        torch.save(result.arrays.to_torch_state_dict(), Path(str(out)) / "global.pt")
