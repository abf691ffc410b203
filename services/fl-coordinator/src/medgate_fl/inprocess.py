"""An in-process federation: the real strategy objects and the real ClientApp, no SuperLink.

:class:`LocalGrid` implements Flower's :class:`~flwr.serverapp.Grid` (the interface
``Strategy.start`` drives) and delivers each message straight to
:data:`medgate_fl.client_app.app`, one :class:`~flwr.app.Context` per site whose
``state`` persists across rounds exactly as a SuperNode's does. Every message and every
reply goes through Flower's protobuf serialisation on the way (``message_to_proto`` /
``message_from_proto``), so the sites never share an object with the server, and the
serialised size is what :class:`RoundTraffic` counts as bytes on the wire.

Faults are injected per message with ``faults``: a callable ``(message, site_id) ->``
``None`` (deliver normally), ``"raise"`` (the ClientApp raises; the site answers with an
error reply, as a SuperNode does), ``"drop"`` (no reply at all, as when a SuperNode dies
mid-round; the server stops waiting at the strategy's timeout, here immediately) or
``"restart"`` (the site's state is lost, as when its SuperNode restarts, and the message is
then delivered).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from flwr.app import ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from medgate_fl.strategies.base import SiteStrategy

Fault = Callable[[Message, int], str | None]
RUN_ID = 1
#: Node ids are arbitrary positive ints in Flower; site ``k`` is node ``NODE_BASE + k``.
NODE_BASE = 1000


@dataclass
class RoundTraffic:
    """Serialised bytes and wall time of one ``send_and_receive`` call, by message type."""

    message_type: str
    server_round: int
    messages: int = 0
    replies: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0


@dataclass
class LocalGrid(Grid):
    """A Grid whose nodes are in-process sites running ``app``."""

    node_configs: Mapping[int, dict[str, bool | float | int | str]]
    run_config: dict[str, bool | float | int | str]
    app: ClientApp
    faults: Fault | None = None
    traffic: list[RoundTraffic] = field(default_factory=list)
    contexts: dict[int, Context] = field(init=False)
    _run: Run = field(init=False)

    def __post_init__(self) -> None:
        self._run = Run.create_empty(RUN_ID)
        self.contexts = {
            node: Context(RUN_ID, node, dict(cfg), RecordDict(), dict(self.run_config))
            for node, cfg in self.node_configs.items()
        }

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return sorted(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("LocalGrid delivers synchronously: use send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("LocalGrid delivers synchronously: use send_and_receive")

    def _deliver(self, msg: Message) -> tuple[Message | None, int, int]:
        msg.metadata.__dict__["_message_id"] = str(uuid4())
        wire = message_to_proto(msg)
        received = message_from_proto(wire)
        node = received.metadata.dst_node_id
        site_id = int(self.node_configs[node]["site-id"])
        fault = self.faults(received, site_id) if self.faults is not None else None
        if fault == "drop":
            return None, wire.ByteSize(), 0
        if fault == "restart":
            self.contexts[node].state = RecordDict()
        try:
            if fault == "raise":
                raise RuntimeError(f"site {site_id} failed during {received.metadata.message_type}")
            reply = self.app(received, self.contexts[node])
        except Exception as exc:  # any ClientApp failure becomes an error reply, as on a SuperNode
            reply = Message(
                Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(exc).__name__}: {exc}"), reply_to=received
            )
        reply_wire = message_to_proto(reply)
        return message_from_proto(reply_wire), wire.ByteSize(), reply_wire.ByteSize()

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        if not messages:
            return []
        start = time.perf_counter()
        first = messages[0]
        config = first.content.config_records.get("config") if first.has_content() else None
        server_round = int(config.get("server-round", 0)) if config is not None else 0  # type: ignore[arg-type]
        stats = RoundTraffic(first.metadata.message_type, server_round, messages=len(messages))
        replies: list[Message] = []
        for msg in messages:
            reply, sent, got = self._deliver(msg)
            stats.bytes_sent += sent
            stats.bytes_received += got
            if reply is not None:
                replies.append(reply)
        stats.replies = len(replies)
        stats.seconds = time.perf_counter() - start
        self.traffic.append(stats)
        return replies


def site_nodes(num_sites: int, cache_dir: Path | None = None) -> dict[int, dict[str, bool | float | int | str]]:
    """The node configs a SuperNode per site would get (``--node-config``)."""
    nodes: dict[int, dict[str, bool | float | int | str]] = {}
    for k in range(num_sites):
        cfg: dict[str, bool | float | int | str] = {"site-id": k, "num-sites": num_sites}
        if cache_dir is not None:
            cfg["cache-dir"] = str(cache_dir)
        nodes[NODE_BASE + k] = cfg
    return nodes


def seed_sampling(seed: int) -> None:
    """Flower's ``sample_nodes`` uses :mod:`random`; seed it so a run is reproducible."""
    random.seed(seed)


@dataclass
class Federation:
    """What one in-process run leaves: the strategy (mixtures, failed rounds), Flower's
    ``Result`` (final arrays, per-round metrics) and the grid (contexts, traffic)."""

    strategy: SiteStrategy
    result: Result
    grid: LocalGrid


def federate(
    run_config: Mapping[str, bool | float | int | str],
    num_sites: int,
    *,
    cache_dir: Path | None = None,
    faults: Fault | None = None,
    evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
) -> Federation:
    """Run ``num-server-rounds`` rounds of the run config's strategy with ``num_sites``
    in-process sites, through the ServerApp's own :func:`~medgate_fl.server_app.run_strategy`
    and the real ClientApp."""
    from medgate_fl.client_app import app as client_app
    from medgate_fl.client_app import cached_site, site_config
    from medgate_fl.server_app import run_strategy

    run = dict(run_config)
    # Flower stamps run and sender ids on new messages from the process's task identity,
    # which a SuperLink sets for a ServerApp process (and run_simulation for its own loop).
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, SUPERLINK_NODE_ID
    seed_sampling(int(run.get("seed", 0)))
    grid = LocalGrid(site_nodes(num_sites, cache_dir), run, client_app, faults)
    for context in grid.contexts.values():
        cached_site(site_config(context))  # a SuperNode's data is on disk before round 1
    strategy, result = run_strategy(grid, run, evaluate_fn)
    return Federation(strategy, result, grid)
