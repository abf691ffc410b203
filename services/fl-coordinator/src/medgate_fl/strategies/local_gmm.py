"""Local-GMM selection: FedGSCA's Client Adaptive Adjustment without the Global Sample Selector.

After the warm-up each site fits its own two-component mixture (quantile start, no global
mixture) to its normalised losses and splits clean/noisy samples with it; no mixture
crosses the wire (``selector = "local"`` in the train config). This is both the
"local GMM" baseline and the "no global selector" ablation."""

from __future__ import annotations

from typing import Any

from medgate_fl.strategies.fedgsca import FedGSCA


class LocalGMM(FedGSCA):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["global_selector"] = False
        super().__init__(**kwargs)
