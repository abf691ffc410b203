"""The clean-label upper bound: FedAvg where every site trains on its *true* labels.

Only possible because the data is synthetic (the site keeps the truth to score selection);
the ClientApp's ``clean`` method trains with cross-entropy on ``Site.true_labels``. It is
an experiment oracle, never a deployment option."""

from __future__ import annotations

from medgate_fl.strategies.base import SiteStrategy


class CleanUpperBound(SiteStrategy):
    method = "clean"
