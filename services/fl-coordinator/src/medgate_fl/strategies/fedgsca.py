"""FedGSCA: FedAvg plus the Global Sample Selector's extra exchange each round.

After ``warmup_rounds`` plain rounds, ``configure_train`` first sends the current model and
the global loss mixture to the sampled sites as ``query.gmm`` messages; each site answers
with its own two-component mixture (weights, means, variances) and its sample count. The
server merges them (:func:`medgate_fl.gmm.aggregate`, count-weighted moment matching) and
puts the merged mixture into the train config, with which the sites split their samples
into clean and noisy and run Client Adaptive Adjustment. Weights are averaged as in FedAvg.
Without the global selector (``global_selector=False``, :mod:`.local_gmm`) no query is sent
and each site fits its own mixture (``selector = "local"`` in the train config).

The query already carried the round's model, so a site that answered it keeps those weights
(in its ``context.state``) and its train message carries none: only the config, with the
weights' content id (:data:`medgate_fl.wire.ARRAYS_DIGEST`) for the site to check against what
it kept. A site whose query failed gets the full train message. The model therefore crosses
the wire once per round, as in FedAvg, not twice. A site that answered the query and then
lost what it kept (its SuperNode restarted in between) refuses the weight-less message with
:data:`medgate_fl.wire.WEIGHTS_NOT_HELD` in its error; the server sends it the full train
message, once, in the same round, and its answer takes the error's place.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging import INFO, WARNING
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid

from medgate_fl import gmm
from medgate_fl.strategies.base import SiteStrategy
from medgate_fl.wire import ARRAYS_DIGEST, WEIGHTS_NOT_HELD

GMM_QUERY = "query.gmm"


class FedGSCA(SiteStrategy):
    method = "fedgsca"

    def __init__(
        self,
        *,
        warmup_rounds: int = 1,
        selector_timeout: float = 600.0,
        global_selector: bool = True,
        wire_log: Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(wire_log=wire_log, **kwargs)  # type: ignore[arg-type]
        self.warmup_rounds = warmup_rounds
        self.selector_timeout = selector_timeout
        self.global_selector = global_selector
        self.mixture: gmm.Mixture | None = None
        self.mixture_history: dict[int, gmm.Mixture] = {}
        #: (round, nodes that answered that round's query): they hold its weights.
        self.holding: tuple[int, frozenset[int]] = (0, frozenset())
        #: The full train message of each site sent a weight-less one this round, and the
        #: grid to resend it on (see :meth:`resend_full`).
        self.full_train: dict[int, Message] = {}
        self.grid: Grid | None = None

    def summary(self) -> None:
        super().summary()
        log(INFO, "\t└──> FedGSCA: warm-up rounds %d, global selector %s", self.warmup_rounds, self.global_selector)

    def _gather_mixture(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> None:
        query_config = ConfigRecord(dict(config.items()))
        query_config["server-round"] = server_round
        if self.mixture is not None:
            query_config.update({f"gmm-{k}": v for k, v in self.mixture.as_lists().items()})
        node_ids = list(grid.get_node_ids())
        record = RecordDict({"arrays": arrays, "config": query_config})
        queries = self._construct_messages(record, node_ids, GMM_QUERY)
        self.wire.record("sent", server_round, queries)
        replies = list(grid.send_and_receive(queries, timeout=self.selector_timeout))
        self.wire.record("received", server_round, replies)
        mixtures, counts, answered = [], [], set()
        for reply in replies:
            if reply.has_error():
                continue
            answered.add(reply.metadata.src_node_id)
            stats = reply.content.metric_records["gmm"]
            mixtures.append(
                gmm.Mixture.from_lists(stats["weights"], stats["means"], stats["variances"])  # type: ignore[arg-type]
            )
            counts.append(int(stats["num-examples"]))  # type: ignore[arg-type]
        self.holding = (server_round, frozenset(answered))
        if mixtures:
            self.mixture = gmm.aggregate(mixtures, counts)
            self.mixture_history[server_round] = self.mixture
            log(INFO, "FedGSCA: global mixture from %d sites: %s", len(mixtures), self.mixture)

    def round_config(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> ConfigRecord:
        config = super().round_config(server_round, arrays, config, grid)
        self.grid = grid
        selecting = server_round > self.warmup_rounds
        config["method"] = "fedgsca" if selecting else "fedavg"
        if selecting and not self.global_selector:
            config["selector"] = "local"
        elif selecting:
            self._gather_mixture(server_round, arrays, config, grid)
            if self.mixture is not None:
                config.update({f"gmm-{k}": v for k, v in self.mixture.as_lists().items()})
        return config

    def shape_train(self, server_round: int, arrays: ArrayRecord, messages: list[Message]) -> list[Message]:
        """Train messages to the sites that answered this round's query carry no weights."""
        held_round, nodes = self.holding
        self.full_train = {}
        if held_round != server_round or not nodes or not messages:
            return messages
        self.full_train = {m.metadata.dst_node_id: m for m in messages if m.metadata.dst_node_id in nodes}
        config = ConfigRecord(dict(messages[0].content.config_records[self.configrecord_key].items()))
        config[ARRAYS_DIGEST] = arrays.object_id
        light = RecordDict({self.configrecord_key: config})
        return [
            msg
            if msg.metadata.dst_node_id not in nodes
            else Message(content=light, message_type=msg.metadata.message_type, dst_node_id=msg.metadata.dst_node_id)
            for msg in messages
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = self.resend_full(server_round, list(replies))
        self.full_train, self.grid = {}, None  # the round's full messages and grid are not kept past it
        return super().aggregate_train(server_round, replies)

    def resend_full(self, server_round: int, replies: list[Message]) -> list[Message]:
        """``replies`` with each site that refused its weight-less train message for want of
        the query's weights (:data:`WEIGHTS_NOT_HELD`) answered again after a full train
        message, sent once and waited for as long as the query (``selector_timeout``, the
        run's ``round-timeout``). The new reply takes the refusal's place. In process the
        replies then come in the order of an undisturbed round, and if the restart fell in
        the first selecting round (before the site had adaptive thresholds to lose) the
        average is that round's bit for bit; on a SuperLink replies come in arrival order
        anyway. A second refusal, no answer, or an answer that is not a reply to the resent
        message (a SuperLink's own "node unavailable" error) leaves the refusal in place:
        the round goes on without that site and the quorum applies."""
        lost = {
            r.metadata.src_node_id: i
            for i, r in enumerate(replies)
            if r.has_error()
            and WEIGHTS_NOT_HELD in (r.error.reason or "")
            and r.metadata.src_node_id in self.full_train
        }
        if not lost or self.grid is None:
            return replies
        log(WARNING, "round %d: %d site(s) lost the query's weights; sending them the full model", server_round,
            len(lost))  # fmt: skip
        full = self.full_train
        again = {
            node: Message(content=full[node].content, message_type=full[node].metadata.message_type, dst_node_id=node)
            for node in lost
        }
        self.wire.record("sent", server_round, again.values())
        answers = list(self.grid.send_and_receive(list(again.values()), timeout=self.selector_timeout))
        # Sending gave each message its id; a reply names the message it answers.
        node_of = {msg.metadata.message_id: node for node, msg in again.items()}
        out, replaced = list(replies), []
        for answer in answers:
            node = node_of.get(answer.metadata.reply_to_message_id)
            if node is None:
                self.wire.record("received", server_round, [answer])  # crossed the wire, answers nothing sent
                continue
            replaced.append(out[lost[node]])
            out[lost[node]] = answer
        self.wire.record("received", server_round, replaced)  # the refusals an answer replaced
        return out
