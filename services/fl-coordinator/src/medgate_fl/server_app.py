"""The coordinator's ServerApp: builds the strategy from the run config and runs the rounds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from medgate_fl.data import num_classes
from medgate_fl.strategies.fedgsca import FedGSCA
from medgate_fl.task import build_model

app = ServerApp()


def strategy_from(run: Mapping[str, object]) -> FedGSCA:
    wire = run.get("wire-log")
    sites = int(run.get("min-sites", 2))  # type: ignore[call-overload]
    return FedGSCA(
        warmup_rounds=int(run.get("warmup-rounds", 1)),  # type: ignore[call-overload]
        wire_log=Path(str(wire)) if wire else None,
        fraction_evaluate=float(run.get("fraction-evaluate", 1.0)),  # type: ignore[arg-type]
        min_train_nodes=sites,
        min_evaluate_nodes=sites,
        min_available_nodes=sites,
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = dict(context.run_config)
    strategy = strategy_from(run)
    model = build_model(num_classes(str(run.get("task", "multiclass"))), seed=int(run.get("seed", 0)))
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=int(run.get("num-server-rounds", 2)),
        train_config=ConfigRecord(
            {
                "lr": float(run.get("lr", 0.01)),
                "local-epochs": int(run.get("local-epochs", 1)),
                "thresholds": str(run.get("thresholds", "adaptive")),
                "loss": str(run.get("loss", "credal")),
            }
        ),
    )
    out = run.get("out-dir")
    if out:
        Path(str(out)).mkdir(parents=True, exist_ok=True)
        torch.save(result.arrays.to_torch_state_dict(), Path(str(out)) / "global.pt")
