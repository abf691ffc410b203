"""The run config a caller may set, and the values each key accepts.

The ServerApp and the ClientApp read these keys (docs/fl.md). The control API refuses a
submission whose values are out of range before anything reaches the SuperLink, and the
ServerApp checks the same rules before round 1, so a run started another way (``flwr run``
by hand) fails at once with the same message instead of after its first round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from medgate_fl.gmm import LOSS_SCALES
from medgate_fl.noise import NOISE_KINDS
from medgate_fl.strategies import SELECTING, STRATEGIES
from medgate_fl.task import MIN_BATCH

ConfigValue = bool | int | float | str
Check = Callable[[object], str | None]
#: TOML integers are signed 64-bit.
INT_MAX = 2**63 - 1


def _integer(low: int) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "must be a whole number"
        if int(value) != value:
            return "must be a whole number"
        if value > INT_MAX:
            return f"must be at most {INT_MAX}"
        return None if value >= low else f"must be at least {low}"

    return check


def _number(low: float, high: float | None = None, *, above: bool = False) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "must be a finite number"
        if value < low or (above and value == low):
            return f"must be {'above' if above else 'at least'} {low}"
        return f"must be at most {high}" if high is not None and value > high else None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: object) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


CHECKS: dict[str, Check] = {
    "strategy": _one_of(*STRATEGIES),
    "num-server-rounds": _integer(1),
    "warmup-rounds": _integer(0),
    "min-sites": _integer(1),
    "min-replies": _integer(1),
    "fraction-evaluate": _number(0.0, 1.0),
    "round-timeout": _number(0.0, above=True),
    "per-site": _integer(MIN_BATCH),
    "test-count": _integer(0),
    "seed": _integer(0),
    "dirichlet-alpha": _number(0.0, above=True),
    "task": _one_of("binary", "multiclass"),
    "noise": _one_of(*NOISE_KINDS),
    "noise-rate": _number(0.0, 1.0),
    "lr": _number(0.0, above=True),
    "local-epochs": _integer(1),
    "batch-size": _integer(MIN_BATCH),
    "thresholds": _one_of("adaptive", "fixed"),
    "loss": _one_of("credal", "ce"),
    "proximal-mu": _number(0.0),
    "per-class-norm": _flag,
    "loss-scale": _one_of(*LOSS_SCALES),
    "site-bn": _flag,
}
#: Keys a caller may set; the coordinator's own (``out-dir``, ``wire-log``, ``metrics-db``,
#: ``cache-dir``) are not among them.
RUN_KEYS = frozenset(CHECKS)
#: What the ServerApp and ClientApp use when these keys are absent (the cross-key rules
#: below need them).
DEFAULTS: dict[str, ConfigValue] = {
    "strategy": "fedgsca", "num-server-rounds": 2, "warmup-rounds": 1, "test-count": 60, "fraction-evaluate": 1.0,
    "per-class-norm": True, "loss-scale": "probability", "site-bn": True,
}  # fmt: skip


def problems(config: Mapping[str, object]) -> list[str]:
    """Every value in ``config`` that a run could not use, one sentence each (empty: fine).
    Keys outside :data:`RUN_KEYS` are not judged here."""
    found = [f"{key} = {value!r}: {why}" for key, value in config.items()
             if key in CHECKS and (why := CHECKS[key](value)) is not None]  # fmt: skip
    if found:
        return found
    merged = {**DEFAULTS, **config}
    rounds, warmup = merged["num-server-rounds"], merged["warmup-rounds"]
    if merged["strategy"] in SELECTING and warmup >= rounds:  # type: ignore[operator]
        found.append(f"warmup-rounds = {warmup} must be fewer than num-server-rounds = {rounds}: it would never select")
    if merged["fraction-evaluate"] > 0 and merged["test-count"] == 0:  # type: ignore[operator]
        found.append("test-count = 0 leaves the sites nothing to evaluate on: set fraction-evaluate = 0 as well")
    return found
