"""Run-config values: what the control API and the ServerApp refuse before any round."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Context, RecordDict

from medgate_fl.runconfig import RUN_KEYS, problems
from medgate_fl.server_app import main, strategy_from, train_config_from

#: The experiment's own settings, as ``medgate fl experiment`` passes them.
GOOD = {
    "strategy": "fedgsca", "num-server-rounds": 30, "warmup-rounds": 10, "min-sites": 10, "min-replies": 7,
    "fraction-evaluate": 0.0, "round-timeout": 600.0, "per-site": 120, "test-count": 300, "seed": 2,
    "dirichlet-alpha": 1.0, "task": "binary", "noise": "heterogeneous", "noise-rate": 0.4, "lr": 2e-3,
    "local-epochs": 5, "batch-size": 8, "thresholds": "adaptive", "loss": "credal", "proximal-mu": 0.01,
    "per-class-norm": False, "loss-scale": "minmax", "site-bn": False,
}  # fmt: skip


def test_every_key_has_a_rule_and_good_values_pass() -> None:
    assert set(GOOD) == RUN_KEYS
    assert problems(GOOD) == []
    assert problems({}) == []  # the ServerApp's defaults are a valid run
    assert problems({"lr": 1, "num-server-rounds": 3.0}) == []  # JSON may send 1 for 1.0 and 3.0 for 3
    strategy_from(GOOD)  # what passes here also builds
    assert train_config_from(GOOD)["batch-size"] == 8
    assert train_config_from(GOOD)["per-class-norm"] is False  # site-wide, as asked
    assert train_config_from({})["per-class-norm"] is True  # per given label unless asked otherwise
    assert train_config_from(GOOD)["loss-scale"] == "minmax" and train_config_from(GOOD)["site-bn"] is False
    assert train_config_from({})["loss-scale"] == "probability" and train_config_from({})["site-bn"] is True


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("strategy", "fedsgd", "one of fedgsca"),
        ("task", "binery", "one of binary, multiclass"),
        ("noise", "gaussian", "one of clean"),
        ("thresholds", "soft", "one of adaptive, fixed"),
        ("loss", "mse", "one of credal, ce"),
        ("num-server-rounds", 0, "at least 1"),
        ("num-server-rounds", 2.5, "whole number"),
        ("num-server-rounds", True, "whole number"),
        ("batch-size", 1, "at least 2"),
        ("per-site", 1, "at least 2"),
        ("local-epochs", 0, "at least 1"),
        ("seed", -1, "at least 0"),
        ("lr", 0.0, "above 0.0"),
        ("lr", "fast", "a finite number"),
        ("lr", float("nan"), "a finite number"),
        ("round-timeout", float("inf"), "a finite number"),
        ("num-server-rounds", float("inf"), "whole number"),
        ("seed", 2**64, "at most 9223372036854775807"),
        ("round-timeout", -5, "above 0.0"),
        ("dirichlet-alpha", 0, "above 0.0"),
        ("noise-rate", 1.5, "at most 1.0"),
        ("fraction-evaluate", -0.1, "at least 0.0"),
        ("proximal-mu", -1e-3, "at least 0.0"),
        ("per-class-norm", "yes", "true or false"),
        ("loss-scale", "zscore", "one of minmax, probability"),
        ("site-bn", 1, "true or false"),
    ],
)
def test_a_value_out_of_range_is_named_with_its_reason(key: str, value: object, why: str) -> None:
    found = problems({**GOOD, key: value})
    assert len(found) == 1 and found[0].startswith(f"{key} = {value!r}") and why in found[0], found


def test_a_selecting_run_must_leave_rounds_after_its_warm_up() -> None:
    found = problems({"num-server-rounds": 3, "warmup-rounds": 3})
    assert found and "never select" in found[0]
    assert problems({"num-server-rounds": 3}) == []  # default warm-up of one round
    assert problems({"strategy": "fedavg", "num-server-rounds": 3, "warmup-rounds": 3}) == []  # no selection
    assert problems({"strategy": "local-gmm", "num-server-rounds": 1}) != []


def test_sites_asked_to_evaluate_need_held_out_slices() -> None:
    assert "nothing to evaluate" in problems({"test-count": 0})[0]  # federated evaluation is on by default
    assert problems({"test-count": 0, "fraction-evaluate": 0.0}) == []


def test_every_problem_is_reported_at_once_and_other_keys_are_left_alone() -> None:
    found = problems({"lr": -1, "batch-size": 0, "out-dir": "/elsewhere"})
    assert [f.split(" = ")[0] for f in found] == ["lr", "batch-size"]


def test_the_server_app_stops_a_hand_started_run_before_anything_happens(tmp_path: Path) -> None:
    """A run started with ``flwr run`` by hand skips the control API; the ServerApp refuses the
    same values before it touches the grid (here: none at all) or the metrics database."""
    db = tmp_path / "metrics.db"
    config = {"batch-size": 1, "lr": 0.002, "metrics-db": f"sqlite:///{db}", "out-dir": str(tmp_path / "out")}
    context = Context(1, 0, {}, RecordDict(), config)
    with pytest.raises(ValueError, match=r"batch-size = 1: must be at least 2"):
        main(None, context)  # type: ignore[arg-type]
    assert not db.exists() and not (tmp_path / "out").exists()
