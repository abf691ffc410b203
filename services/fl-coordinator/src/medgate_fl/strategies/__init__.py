"""One strategy per file; :func:`build_strategy` makes one by name (run config ``strategy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medgate_fl.strategies.base import SiteStrategy
from medgate_fl.strategies.clean import CleanUpperBound
from medgate_fl.strategies.fedavg import FedAvgBaseline
from medgate_fl.strategies.fedgsca import FedGSCA
from medgate_fl.strategies.fedprox import FedProxBaseline
from medgate_fl.strategies.local_gmm import LocalGMM

STRATEGIES = ("fedgsca", "fedavg", "fedprox", "local-gmm", "clean")
#: The strategies that select samples after a FedAvg warm-up (run config ``warmup-rounds``).
SELECTING = ("fedgsca", "local-gmm")


def build_strategy(
    name: str,
    *,
    min_sites: int = 2,
    min_replies: int = 1,
    warmup_rounds: int = 1,
    proximal_mu: float = 0.01,
    fraction_evaluate: float = 1.0,
    wire_log: Path | None = None,
    selector_timeout: float = 600.0,
) -> SiteStrategy:
    """``min_sites``: sites to wait for and sample each round; ``min_replies``: the quorum;
    ``selector_timeout``: how long FedGSCA waits for the sites' mixtures."""
    common: dict[str, Any] = {
        "min_replies": min_replies,
        "wire_log": wire_log,
        "fraction_evaluate": fraction_evaluate,
        "min_train_nodes": min_sites,
        "min_evaluate_nodes": min_sites if fraction_evaluate > 0 else 0,
        "min_available_nodes": min_sites,
    }
    if name == "fedgsca":
        return FedGSCA(warmup_rounds=warmup_rounds, selector_timeout=selector_timeout, **common)
    if name == "local-gmm":
        return LocalGMM(warmup_rounds=warmup_rounds, **common)
    if name == "fedavg":
        return FedAvgBaseline(**common)
    if name == "fedprox":
        return FedProxBaseline(proximal_mu=proximal_mu, **common)
    if name == "clean":
        return CleanUpperBound(**common)
    raise ValueError(f"unknown strategy {name!r}; one of {STRATEGIES}")
