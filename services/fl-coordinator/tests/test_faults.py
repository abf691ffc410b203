"""A site killed during a round, in the in-process federation: the round completes with the
others when the quorum (``min-replies``) allows, or leaves the global model untouched, and
the next round proceeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, Message, MetricRecord

from medgate_fl.inprocess import NODE_BASE, Federation, federate
from medgate_fl.wire import WEIGHTS_NOT_HELD

SITES = 3
RUN: dict[str, bool | float | int | str] = {
    "strategy": "fedgsca",
    "num-server-rounds": 3,
    "per-site": 16,
    "test-count": 12,
    "noise": "symmetric",
    "noise-rate": 0.4,
    "min-sites": SITES,
    "warmup-rounds": 1,
    "fraction-evaluate": 0.0,
    "seed": 0,
}


def _flat(arrays: ArrayRecord) -> np.ndarray:
    return np.concatenate([a.numpy().ravel() for a in arrays.to_torch_state_dict().values()])


def _run(cache: Path, kill: dict[tuple[int, str], str], min_replies: int) -> tuple[Federation, dict[int, np.ndarray]]:
    """``kill[(site, message_type)] = "raise" | "drop"`` from round 2 on."""
    models: dict[int, np.ndarray] = {}

    def snapshot(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        models[server_round] = _flat(arrays)
        return None

    def faults(msg: Message, site: int) -> str | None:
        config = msg.content.config_records["config"]
        if int(config.get("server-round", 0)) < 2:  # type: ignore[arg-type]
            return None
        return kill.get((site, msg.metadata.message_type))

    fed = federate({**RUN, "min-replies": min_replies}, SITES, cache_dir=cache, faults=faults, evaluate_fn=snapshot)
    return fed, models


@pytest.mark.parametrize("how", ["raise", "drop"])
def test_round_completes_without_a_dead_site(cache: Path, how: str) -> None:
    fed, models = _run(cache, {(1, "train"): how, (1, "query.gmm"): how}, min_replies=2)
    assert fed.strategy.failed_rounds == []
    for r in (2, 3):
        assert np.isfinite(models[r]).all()
        assert not np.array_equal(models[r], models[r - 1])
        assert "selection-precision" in fed.result.train_metrics_clientapp[r]
    # The global mixture of rounds 2 and 3 came from the two live sites only.
    assert set(fed.strategy.mixture_history) == {2, 3}  # type: ignore[attr-defined]
    replies = [(t.server_round, t.message_type, t.replies) for t in fed.grid.traffic]
    expected_train = SITES if how == "raise" else SITES - 1  # an error reply still arrives
    assert (2, "train", expected_train) in replies
    assert (3, "train", expected_train) in replies


def test_below_quorum_the_global_model_is_kept(cache: Path) -> None:
    kill = {(0, "train"): "drop", (1, "train"): "raise"}
    fed, models = _run(cache, kill, min_replies=2)
    assert fed.strategy.failed_rounds == [2, 3]
    assert np.array_equal(models[2], models[1])
    assert np.array_equal(models[3], models[1])
    assert np.array_equal(_flat(fed.result.arrays), models[1])


def test_failed_round_then_recovery(cache: Path) -> None:
    """Sites fail in round 2 only; round 3 trains again from round 1's model."""
    models: dict[int, np.ndarray] = {}

    def snapshot(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        models[server_round] = _flat(arrays)
        return None

    def faults(msg: Message, site: int) -> str | None:
        round_ = int(msg.content.config_records["config"].get("server-round", 0))  # type: ignore[arg-type]
        return "raise" if round_ == 2 and msg.metadata.message_type == "train" and site > 0 else None

    fed = federate({**RUN, "min-replies": 2}, SITES, cache_dir=cache, faults=faults, evaluate_fn=snapshot)
    assert fed.strategy.failed_rounds == [2]
    assert np.array_equal(models[2], models[1])
    assert not np.array_equal(models[3], models[2])
    assert np.isfinite(models[3]).all()


def _restart_run(
    cache: Path, tmp_path: Path, restart: tuple[int, int] | None, resend: str | None = None, min_replies: int = SITES
) -> tuple[Federation, dict[int, np.ndarray], list[dict[str, object]]]:
    """A run where site ``restart[1]`` loses its state just before its weight-less train
    message of round ``restart[0]``; ``resend``: the fault of the full message sent after."""
    models: dict[int, np.ndarray] = {}

    def snapshot(server_round: int, arrays: ArrayRecord) -> None:
        models[server_round] = _flat(arrays)

    def faults(msg: Message, site: int) -> str | None:
        round_ = int(msg.content.config_records["config"].get("server-round", 0))  # type: ignore[arg-type]
        if restart is None or (round_, site) != restart or msg.metadata.message_type != "train":
            return None
        return "restart" if not msg.content.array_records else resend

    log = tmp_path / f"wire-{restart}-{resend}.jsonl"
    run = {**RUN, "min-replies": min_replies, "wire-log": str(log)}
    fed = federate(run, SITES, cache_dir=cache, faults=faults, evaluate_fn=snapshot)
    wire = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return fed, models, wire


def _site_train_entries(wire: list[dict[str, object]], direction: str) -> list[dict[str, object]]:
    """The wire log's train messages of round 2 to (``sent``) or from (``received``) site 1."""
    return [
        w
        for w in wire
        if w["round"] == 2 and w["direction"] == direction and w["node"] == NODE_BASE + 1 and w["type"] == "train"
    ]


def test_a_site_that_restarts_between_query_and_train_is_sent_the_full_model(cache: Path, tmp_path: Path) -> None:
    """Site 1 "restarts" just before round 2's train message (the in-process grid's
    ``restart`` fault clears its state): it holds no weights from the query, refuses the
    weight-less message with ``weights-not-held``, gets the full one and trains. Round 2 is
    the first selecting round: the adaptive thresholds it also lost were still uniform, and
    it recomputes the query's predictions from the same model, so the global model equals an
    undisturbed run's bit for bit (the new reply takes the refusal's place, so the average
    sums in the same order). The wire log holds the refusal once and the answer once."""
    _, calm, _ = _restart_run(cache, tmp_path, None)
    fed, models, wire = _restart_run(cache, tmp_path, (2, 1))
    assert fed.strategy.failed_rounds == []
    sends = [(t.message_type, t.messages, t.replies) for t in fed.grid.traffic if t.server_round == 2]
    assert sends == [("query.gmm", 3, 3), ("train", 3, 3), ("train", 1, 1)], sends
    assert all(np.array_equal(calm[r], models[r]) for r in (1, 2, 3))
    got = _site_train_entries(wire, "received")
    assert [w["error"] for w in got] == [True, False]
    assert WEIGHTS_NOT_HELD in str(got[0]["reason"])
    sent = _site_train_entries(wire, "sent")
    assert ["arrays" in w["content"] for w in sent] == [False, True]  # type: ignore[operator]


@pytest.mark.parametrize("resend", ["drop", "raise"])
def test_a_restarted_site_whose_resend_fails_leaves_the_round_to_the_others(
    cache: Path, tmp_path: Path, resend: str
) -> None:
    """The full message is sent once: if it gets no answer, or an error, the refusal stays,
    the round completes with the two other sites (quorum 2) and nothing is logged twice."""
    fed, models, wire = _restart_run(cache, tmp_path, (2, 1), resend, min_replies=2)
    assert fed.strategy.failed_rounds == []
    assert not np.array_equal(models[2], models[1]) and np.isfinite(models[3]).all()
    sends = [(t.message_type, t.messages) for t in fed.grid.traffic if t.server_round == 2]
    assert sends == [("query.gmm", 3), ("train", 3), ("train", 1)], sends
    got = _site_train_entries(wire, "received")
    assert [w["error"] for w in got] == ([True] if resend == "drop" else [True, True]), got
