"""FedAvg baseline: Flower's FedAvg, sites train with plain cross-entropy on their given labels."""

from __future__ import annotations

from medgate_fl.strategies.base import SiteStrategy


class FedAvgBaseline(SiteStrategy):
    method = "fedavg"
