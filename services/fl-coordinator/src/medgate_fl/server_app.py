"""The coordinator's ServerApp: builds the strategy from the run config and runs the rounds.

Deployed, it also scores each round's global model on the clean held-out slices
(``test-count``), records per-round metrics in the database named by ``metrics-db``, and
after the last round exports the global model (``global.pt``, ``global.onnx``,
``model_card.json``) into ``out-dir``. The in-process federation calls
:func:`run_strategy` directly and does none of that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from logging import WARNING
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Result

from medgate_fl.data import num_classes
from medgate_fl.global_model import export_global_model, held_out_evaluator
from medgate_fl.rounds import MeteredGrid, RoundRecorder
from medgate_fl.runconfig import DEFAULTS, problems
from medgate_fl.rundb import RoundMetrics, RunStore, migrate, public_config
from medgate_fl.strategies import build_strategy
from medgate_fl.strategies.base import SiteStrategy
from medgate_fl.task import build_model, checked_batch

app = ServerApp()
#: Seconds the server waits for the sites' replies in a round (run-config ``round-timeout``).
ROUND_TIMEOUT = 3600.0


def strategy_from(run: Mapping[str, object]) -> SiteStrategy:
    """The strategy named by ``strategy`` (default fedgsca), configured from the run config."""
    wire = run.get("wire-log")
    sites = int(run.get("min-sites", 2))  # type: ignore[call-overload]
    # A dead site costs the selector's query (and a resent train message) the same wait as a
    # training round.
    timeout = float(run.get("round-timeout", ROUND_TIMEOUT))  # type: ignore[arg-type]
    return build_strategy(
        str(run.get("strategy", DEFAULTS["strategy"])),
        min_sites=sites,
        min_replies=int(run.get("min-replies", 1)),  # type: ignore[call-overload]
        warmup_rounds=int(run.get("warmup-rounds", DEFAULTS["warmup-rounds"])),  # type: ignore[call-overload]
        proximal_mu=float(run.get("proximal-mu", 0.01)),  # type: ignore[arg-type]
        fraction_evaluate=float(run.get("fraction-evaluate", DEFAULTS["fraction-evaluate"])),  # type: ignore[arg-type]
        wire_log=Path(str(wire)) if wire else None,
        selector_timeout=timeout,
    )


def train_config_from(run: Mapping[str, object]) -> ConfigRecord:
    """What every train message carries from the run config (the strategy adds its own keys)."""
    batch = checked_batch(int(run.get("batch-size", 32)))  # type: ignore[call-overload]
    return ConfigRecord(
        {
            "lr": float(run.get("lr", 1e-3)),  # type: ignore[arg-type]
            "local-epochs": int(run.get("local-epochs", 1)),  # type: ignore[call-overload]
            "batch-size": batch,
            "thresholds": str(run.get("thresholds", "adaptive")),
            "loss": str(run.get("loss", "credal")),
            "per-class-norm": bool(run.get("per-class-norm", DEFAULTS["per-class-norm"])),
            "loss-scale": str(run.get("loss-scale", DEFAULTS["loss-scale"])),
            "site-bn": bool(run.get("site-bn", DEFAULTS["site-bn"])),
        }
    )


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
        num_rounds=int(run.get("num-server-rounds", DEFAULTS["num-server-rounds"])),  # type: ignore[call-overload]
        timeout=float(run.get("round-timeout", ROUND_TIMEOUT)),  # type: ignore[arg-type]
        train_config=train_config_from(run),
        evaluate_fn=evaluate_fn,
    )
    return strategy, result


def _store(run: Mapping[str, object], run_id: int) -> RunStore | None:
    """The run's metrics database (run config ``metrics-db``), schema migrated, run recorded.
    A database that cannot be reached here fails the run before any site works."""
    url = run.get("metrics-db")
    if not url:
        return None
    migrate(str(url))
    store = RunStore(str(url))
    store.ensure_run(run_id, dict(run), str(run.get("out-dir", "")), "running")
    store.set_status(run_id, "running")
    return store


def _close(store: RunStore | None, run_id: int, status: str, summary: dict[str, object] | None = None) -> None:
    """Record how the run ended; a database error is logged, never raised over the run's own."""
    if store is None:
        return
    try:
        store.set_status(run_id, status, summary)
    except Exception as exc:
        log(WARNING, "run status %r not stored: %s", status, exc)
    finally:
        store.dispose()


def _recording(store: RunStore | None, run_id: int) -> Callable[[RoundMetrics], None] | None:
    if store is None:
        return None

    def sink(row: RoundMetrics) -> None:
        try:
            store.add_round(run_id, row)
        except Exception as exc:  # a metrics outage must not end a federated run
            log(WARNING, "round %d: metrics not stored: %s", row.round, exc)

    return sink


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = dict(context.run_config)
    bad = problems(run)
    if bad:  # the control API refuses these; a run started by hand stops here, before round 1
        raise ValueError(f"run config values a run cannot use: {'; '.join(bad)}")
    task = str(run.get("task", "multiclass"))
    test_count = int(run.get("test-count", DEFAULTS["test-count"]))
    cache = run.get("cache-dir")
    evaluate = (
        held_out_evaluator(task, test_count, int(run.get("seed", 0)), Path(str(cache)) if cache else None)
        if test_count > 0
        else None
    )
    store = _store(run, context.run_id)
    metered = MeteredGrid(grid)
    recorder = RoundRecorder(metered, evaluate, _recording(store, context.run_id))
    try:
        strategy, result = run_strategy(metered, run, recorder)
        summary: dict[str, object] = {
            "rounds": len(recorder.rounds),
            "failed-rounds": list(strategy.failed_rounds),
            **recorder.last_metrics,
        }
        out = run.get("out-dir")
        if out:
            if len(result.arrays) > 0:
                state = dict(result.arrays.to_torch_state_dict())
            else:  # every round below quorum: the initial model is the global model
                state = dict(build_model(num_classes(task), seed=int(run.get("seed", 0))).state_dict())
            card = export_global_model(
                state,
                task,
                Path(str(out)),
                run_config=public_config(run),
                rounds=len(recorder.rounds),
                metrics=recorder.last_metrics,
            )
            summary["onnx-sha256"] = card["sha256"]
    except BaseException:
        _close(store, context.run_id, "failed")
        raise
    _close(store, context.run_id, "finished", summary)
