"""What the deployed ServerApp measures per round, and where it keeps it.

:class:`MeteredGrid` wraps the SuperLink's grid and counts, per round (the ``server-round``
config key every message of a round carries), the serialised size of what was sent and
received and the valid train replies with their scalar metrics. :class:`RoundRecorder`
is the strategy's ``evaluate_fn``: after each round it scores the new global model on the
clean held-out slices and hands a :class:`~medgate_fl.rundb.RoundMetrics` to its sink
(the database when the run config names one). Nothing here changes what the strategy does.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common.serde import recorddict_to_proto
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from medgate_fl.rundb import RoundMetrics

SELECTION_KEYS = ("selection-precision", "selection-recall")
WEIGHT_KEY = "num-examples"


def content_bytes(message: Message) -> int:
    """Serialised size of a message's records (an error reply counts as empty)."""
    if message.has_error() or not message.has_content():
        return 0
    return int(recorddict_to_proto(message.content).ByteSize())


def _round_of(messages: list[Message]) -> int:
    for msg in messages:
        if msg.has_content():
            config = msg.content.config_records.get("config")
            if config is not None and "server-round" in config:
                return int(config["server-round"])  # type: ignore[arg-type]
    return 0


@dataclass
class RoundTally:
    bytes: int = 0
    train_replies: int = 0
    # metric -> (sum of value x num-examples, sum of num-examples), as FedAvg weights them
    weighted: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add_train_reply(self, reply: Message) -> None:
        self.train_replies += 1
        metrics = reply.content.metric_records.get("metrics")
        if metrics is None:
            return
        n = float(metrics.get(WEIGHT_KEY, 1))  # type: ignore[arg-type]
        for key in SELECTION_KEYS:
            if key in metrics:
                total, weight = self.weighted.get(key, (0.0, 0.0))
                self.weighted[key] = (total + float(metrics[key]) * n, weight + n)  # type: ignore[arg-type]

    def mean(self, key: str) -> float | None:
        total, weight = self.weighted.get(key, (0.0, 0.0))
        return total / weight if weight > 0 else None


class MeteredGrid(Grid):
    """Delegates everything to ``inner`` and tallies each ``send_and_receive`` by round."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner
        self.tally: defaultdict[int, RoundTally] = defaultdict(RoundTally)

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        tally = self.tally[_round_of(messages)]
        tally.bytes += sum(content_bytes(m) for m in messages) + sum(content_bytes(r) for r in replies)
        for reply in replies:
            if not reply.has_error() and reply.metadata.message_type == "train":
                tally.add_train_reply(reply)
        return replies


Evaluate = Callable[[ArrayRecord], dict[str, float]]
Sink = Callable[[RoundMetrics], None]


class RoundRecorder:
    """The strategy's ``evaluate_fn``: held-out metrics of each round's global model, joined
    with the grid's tally and the round's wall time, passed to ``sink``.

    A round's seconds run from the end of the previous evaluation to the start of this one
    (training, the selector's query, aggregation); evaluation time is not counted."""

    def __init__(self, grid: MeteredGrid, evaluate: Evaluate | None, sink: Sink | None = None) -> None:
        self.grid = grid
        self.evaluate = evaluate
        self.sink = sink
        self.rounds: list[RoundMetrics] = []
        self.last_metrics: dict[str, float] = {}
        self._since = time.perf_counter()

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        now = time.perf_counter()
        metrics = self.evaluate(arrays) if self.evaluate is not None else {}
        self.last_metrics = metrics
        if server_round > 0:
            tally = self.grid.tally[server_round]
            row = RoundMetrics(
                round=server_round,
                bytes=tally.bytes,
                seconds=now - self._since,
                replies=tally.train_replies,
                accuracy=metrics.get("accuracy"),
                macro_f1=metrics.get("macro-f1"),
                selection_precision=tally.mean("selection-precision"),
                selection_recall=tally.mean("selection-recall"),
            )
            self.rounds.append(row)
            if self.sink is not None:
                self.sink(row)
        self._since = time.perf_counter()
        return MetricRecord(dict(metrics)) if metrics else None
