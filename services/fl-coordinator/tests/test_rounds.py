"""Per-round metrics of the deployed ServerApp (``MeteredGrid`` + ``RoundRecorder``), driven
in process: the same strategy code, a :class:`~medgate_fl.inprocess.LocalGrid` underneath
instead of the SuperLink's grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Message
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity

from medgate_fl.client_app import app as client_app
from medgate_fl.client_app import cached_site, site_config
from medgate_fl.global_model import held_out_evaluator
from medgate_fl.inprocess import RUN_ID, LocalGrid, seed_sampling, site_nodes
from medgate_fl.rounds import MeteredGrid, RoundRecorder
from medgate_fl.rundb import RoundMetrics
from medgate_fl.server_app import run_strategy

SITES = 3
RUN: dict[str, bool | float | int | str] = {
    "strategy": "fedgsca", "num-server-rounds": 2, "per-site": 16, "test-count": 12, "noise": "symmetric",
    "noise-rate": 0.4, "min-sites": SITES, "min-replies": 2, "warmup-rounds": 1, "fraction-evaluate": 0.0, "seed": 0,
}  # fmt: skip


def test_rounds_tally_bytes_replies_and_selection_as_the_strategy_saw_them(cache: Path) -> None:
    def faults(msg: Message, site: int) -> str | None:
        config = msg.content.config_records["config"]
        late = int(config.get("server-round", 0)) >= 2  # type: ignore[arg-type]
        return "drop" if late and site == 2 and msg.metadata.message_type == "train" else None

    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, SUPERLINK_NODE_ID
    seed_sampling(0)
    inner = LocalGrid(site_nodes(SITES, cache), dict(RUN), client_app, faults)
    for context in inner.contexts.values():
        cached_site(site_config(context))
    rows: list[RoundMetrics] = []
    grid = MeteredGrid(inner)
    recorder = RoundRecorder(grid, held_out_evaluator("multiclass", 12, 0, cache), rows.append)
    strategy, result = run_strategy(grid, RUN, recorder)

    assert rows == recorder.rounds and [r.round for r in rows] == [1, 2]
    assert [r.replies for r in rows] == [3, 2]  # site 2's round-2 train reply was lost
    assert strategy.failed_rounds == []
    for row in rows:
        # Records only (no envelope): a little less than what LocalGrid counts for whole messages.
        wire = sum(t.bytes_sent + t.bytes_received for t in inner.traffic if t.server_round == row.round)
        assert 0.9 * wire < row.bytes <= wire
        assert row.seconds > 0
        assert row.accuracy == result.evaluate_metrics_serverapp[row.round]["accuracy"]
        assert row.macro_f1 == result.evaluate_metrics_serverapp[row.round]["macro-f1"]
    # FedAvg's own weighted mean of the sites' selection metrics, reproduced from the replies.
    train = result.train_metrics_clientapp[2]
    assert rows[1].selection_precision == pytest.approx(float(train["selection-precision"]))  # type: ignore[arg-type]
    assert rows[1].selection_recall == pytest.approx(float(train["selection-recall"]))  # type: ignore[arg-type]
    assert recorder.last_metrics["accuracy"] == rows[1].accuracy
