"""FedProx baseline: FedAvg on the server; each site adds ``mu/2 ||w - w_global||^2`` to its
cross-entropy (:func:`medgate_fl.task.train_epochs`). ``mu`` travels as ``proximal-mu``, the
key Flower's own ``FedProx`` strategy uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medgate_fl.strategies.base import SiteStrategy


class FedProxBaseline(SiteStrategy):
    method = "fedprox"

    def __init__(self, *, proximal_mu: float = 0.01, wire_log: Path | None = None, **kwargs: Any) -> None:
        super().__init__(wire_log=wire_log, train_extra={"proximal-mu": float(proximal_mu)}, **kwargs)
        self.proximal_mu = proximal_mu
