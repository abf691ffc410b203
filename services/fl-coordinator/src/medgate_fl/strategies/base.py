"""What every MedGate strategy shares on top of Flower's FedAvg.

* ``method``: the local procedure the sites run, sent as the ``method`` train-config key
  (the ClientApp dispatches on it: ``fedavg``, ``fedprox``, ``fedgsca``, ``clean``);
* ``train_extra``: further train-config keys of the strategy (e.g. ``proximal-mu``);
* ``min_replies``: the quorum. A training round whose valid replies (no error, not lost)
  are fewer than this leaves the global model as it was: ``aggregate_train`` returns
  ``None`` and ``Strategy.start`` keeps the previous arrays, so the next round starts from
  an uncorrupted model. With enough replies the round completes with the sites that
  answered (Flower's FedAvg skips error replies);
* the wire audit of :mod:`medgate_fl.wire`.

Weight averaging is Flower's FedAvg, unchanged (weighted by ``num-examples``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from logging import WARNING
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from medgate_fl.wire import WireLog

ConfigValue = bool | float | int | str


class SiteStrategy(FedAvg):
    method = "fedavg"

    def __init__(
        self,
        *,
        min_replies: int = 1,
        wire_log: Path | None = None,
        train_extra: Mapping[str, ConfigValue] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.min_replies = min_replies
        self.train_extra = dict(train_extra or {})
        self.wire = WireLog(wire_log)
        self.failed_rounds: list[int] = []

    def round_config(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> ConfigRecord:
        """The train config of one round (a copy; subclasses add to it)."""
        out = ConfigRecord(dict(config.items()))
        out["method"] = self.method
        out.update(self.train_extra)
        return out

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        round_config = self.round_config(server_round, arrays, config, grid)
        messages = self.shape_train(
            server_round, arrays, list(super().configure_train(server_round, arrays, round_config, grid))
        )
        self.wire.record("sent", server_round, messages)
        return messages

    def shape_train(self, server_round: int, arrays: ArrayRecord, messages: list[Message]) -> list[Message]:
        """The train messages as sent (subclasses may lighten some); FedAvg's as they are."""
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        self.wire.record("received", server_round, replies)
        valid = sum(1 for r in replies if not r.has_error())
        if valid < self.min_replies:
            log(WARNING, "round %d: %d valid replies < quorum %d; global model kept", server_round, valid,
                self.min_replies)  # fmt: skip
            self.failed_rounds.append(server_round)
            return None, None
        return super().aggregate_train(server_round, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_evaluate(server_round, arrays, config, grid))
        self.wire.record("sent", server_round, messages)
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        self.wire.record("received", server_round, replies)
        return super().aggregate_evaluate(server_round, replies)
