"""The in-process federation: the real strategies and ClientApp through a LocalGrid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, RecordDict

from medgate_fl.inprocess import NODE_BASE, Federation, federate
from medgate_fl.strategies.base import SiteStrategy
from medgate_fl.strategies.fedgsca import FedGSCA
from medgate_fl.wire import ARRAYS_DIGEST

SITES = 3
RUN: dict[str, bool | float | int | str] = {
    "num-server-rounds": 2,
    "per-site": 16,
    "test-count": 12,
    "noise": "symmetric",
    "noise-rate": 0.4,
    "min-sites": SITES,
    "warmup-rounds": 1,
    "fraction-evaluate": 1.0,
    "seed": 0,
}


def _run(cache: Path, **overrides: bool | float | int | str) -> Federation:
    return federate({**RUN, **overrides}, SITES, cache_dir=cache)


def _flat(f: Federation) -> np.ndarray:
    return np.concatenate([a.numpy().ravel() for a in f.result.arrays.to_torch_state_dict().values()])


def test_fedgsca_rounds_through_the_clientapp(cache: Path) -> None:
    f = _run(cache, strategy="fedgsca")
    assert isinstance(f.strategy, FedGSCA)
    assert set(f.strategy.mixture_history) == {2}
    kinds = [(t.server_round, t.message_type, t.messages, t.replies) for t in f.grid.traffic]
    assert kinds == [
        (1, "train", 3, 3), (1, "evaluate", 3, 3),
        (2, "query.gmm", 3, 3), (2, "train", 3, 3), (2, "evaluate", 3, 3),
    ]  # fmt: skip
    selection = f.result.train_metrics_clientapp[2]
    assert 0.0 <= selection["selection-precision"] <= 1.0
    assert 0.0 < selection["clean-fraction"] < 1.0
    assert 0.0 <= f.result.evaluate_metrics_clientapp[2]["accuracy"] <= 1.0
    # Client Adaptive Adjustment's thresholds live in each site's persistent context state.
    for node in range(NODE_BASE, NODE_BASE + SITES):
        assert "caa" in f.grid.contexts[node].state.config_records
    # The model crossed the wire as arrays of the model's size, and the GMM reply is tiny.
    train = next(t for t in f.grid.traffic if t.message_type == "train")
    query = next(t for t in f.grid.traffic if t.message_type == "query.gmm")
    assert train.bytes_received > 3 * 90_000
    assert query.bytes_received < 3 * 400
    # Round 2's model went out once, with the query; its train messages carried config only.
    train2 = next(t for t in f.grid.traffic if t.message_type == "train" and t.server_round == 2)
    assert query.bytes_sent > 3 * 90_000 and train.bytes_sent > 3 * 90_000
    assert train2.bytes_sent < 3 * 2_000


def _train_payloads(cache: Path, **faults: str) -> tuple[Federation, list[tuple[int, int, bool, bool]]]:
    """A FedGSCA run whose ``faults`` ('<message type>@<site>' -> fault) are injected in
    round 2; returns it and (round, site, carries weights, carries a digest) per train message."""
    seen: list[tuple[int, int, bool, bool]] = []

    def spy(msg: Message, site: int) -> str | None:
        config = msg.content.config_records["config"]
        if msg.metadata.message_type == "train":
            seen.append(
                (int(config["server-round"]), site, "arrays" in msg.content.array_records, ARRAYS_DIGEST in config)
            )  # type: ignore[arg-type]
        return faults.get(f"{msg.metadata.message_type}@{site}") if config.get("server-round") == 2 else None

    return federate({**RUN, "strategy": "fedgsca"}, SITES, cache_dir=cache, faults=spy), seen


def test_a_site_trains_the_weights_it_kept_from_the_query_as_if_they_had_been_resent(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    light, seen = _train_payloads(cache)
    assert sorted(seen) == [(1, s, True, False) for s in range(SITES)] + [(2, s, False, True) for s in range(SITES)]
    monkeypatch.setattr(FedGSCA, "shape_train", SiteStrategy.shape_train)  # the model sent twice, as before
    full, seen = _train_payloads(cache)
    assert all(carries for _, _, carries, _ in seen)
    assert np.array_equal(_flat(light), _flat(full))
    assert light.result.train_metrics_clientapp[2] == full.result.train_metrics_clientapp[2]


@pytest.mark.parametrize("fault", ["drop", "raise"])
def test_a_site_whose_query_was_lost_gets_the_weights_with_its_train_message(cache: Path, fault: str) -> None:
    f, seen = _train_payloads(cache, **{"query.gmm@1": fault})
    round2 = {site: (carries, digest) for r, site, carries, digest in seen if r == 2}
    assert round2 == {0: (False, True), 1: (True, False), 2: (False, True)}
    train2 = next(t for t in f.grid.traffic if t.message_type == "train" and t.server_round == 2)
    assert (train2.messages, train2.replies) == (3, 3)
    assert "clean-fraction" in f.result.train_metrics_clientapp[2]
    assert f.strategy.failed_rounds == []


def test_a_train_message_without_weights_fails_clearly_unless_the_site_kept_the_same_weights(cache: Path) -> None:
    f, _ = _train_payloads(cache)
    arrays = f.result.arrays

    def send(kind: str, **extra: bool | float | int | str) -> Message:
        config = ConfigRecord({"server-round": 3, "method": "fedgsca", **extra})
        content = {"config": config} if kind == "train" else {"arrays": arrays, "config": config}
        (reply,) = f.grid.send_and_receive([Message(RecordDict(content), dst_node_id=NODE_BASE, message_type=kind)])
        return reply

    reply = send("train", **{ARRAYS_DIGEST: arrays.object_id})
    assert reply.has_error() and "holds none" in reply.error.reason, reply.error.reason
    assert not send("query.gmm").has_error()
    reply = send("train", **{ARRAYS_DIGEST: "0" * 64})
    assert reply.has_error() and "do not match" in reply.error.reason, reply.error.reason
    # What was kept is spent by the train message that found it, matching or not.
    reply = send("train", **{ARRAYS_DIGEST: arrays.object_id})
    assert reply.has_error() and "holds none" in reply.error.reason
    assert not send("query.gmm").has_error()
    reply = send("train", **{ARRAYS_DIGEST: arrays.object_id})
    assert not reply.has_error() and reply.content.array_records["arrays"].keys() == arrays.keys()
    # Weights kept from an earlier round's query are not used for a later round.
    assert not send("query.gmm").has_error()
    reply = send("train", **{"server-round": 4, ARRAYS_DIGEST: arrays.object_id})
    assert reply.has_error() and "round 4" in reply.error.reason and "holds none" in reply.error.reason


def test_runs_are_deterministic(cache: Path) -> None:
    a, b = _run(cache, strategy="fedgsca"), _run(cache, strategy="fedgsca")
    assert np.array_equal(_flat(a), _flat(b))
    assert a.result.train_metrics_clientapp[2] == b.result.train_metrics_clientapp[2]


def test_local_gmm_sends_no_mixture(cache: Path) -> None:
    seen: list[dict[str, object]] = []

    def spy(msg: Message, site: int) -> None:
        if msg.metadata.message_type == "train":
            seen.append(dict(msg.content.config_records["config"]))

    f = federate({**RUN, "strategy": "local-gmm"}, SITES, cache_dir=cache, faults=spy)
    assert all(t.message_type != "query.gmm" for t in f.grid.traffic)
    round2 = [c for c in seen if c["server-round"] == 2]
    assert round2
    assert all(c["method"] == "fedgsca" and c["selector"] == "local" for c in round2)
    assert not any(k.startswith("gmm-") for c in round2 for k in c)
    assert "selection-precision" in f.result.train_metrics_clientapp[2]


@pytest.mark.parametrize(("strategy", "method"), [("fedavg", "fedavg"), ("fedprox", "fedprox"), ("clean", "clean")])
def test_baselines_send_their_method(cache: Path, strategy: str, method: str) -> None:
    seen: list[dict[str, object]] = []

    def spy(msg: Message, site: int) -> None:
        if msg.metadata.message_type == "train":
            seen.append(dict(msg.content.config_records["config"]))

    f = federate({**RUN, "strategy": strategy, "fraction-evaluate": 0.0}, SITES, cache_dir=cache, faults=spy)
    assert {c["method"] for c in seen} == {method}
    assert ("proximal-mu" in seen[0]) == (strategy == "fedprox")
    assert set(f.result.train_metrics_clientapp) == {1, 2}


def test_the_minibatch_size_reaches_the_sites_training(cache: Path) -> None:
    seen: list[object] = []

    def spy(msg: Message, site: int) -> None:
        if msg.metadata.message_type == "train":
            seen.append(msg.content.config_records["config"]["batch-size"])

    small = federate({**RUN, "strategy": "fedavg", "num-server-rounds": 1, "batch-size": 4}, SITES,
                     cache_dir=cache, faults=spy)  # fmt: skip
    assert seen == [4] * SITES
    large = _run(cache, strategy="fedavg", **{"num-server-rounds": 1, "batch-size": 16})
    again = _run(cache, strategy="fedavg", **{"num-server-rounds": 1, "batch-size": 4})
    # Four steps of 4 per epoch train another model than one step of 16; the same size, the same model.
    assert not np.allclose(_flat(small), _flat(large))
    assert np.array_equal(_flat(small), _flat(again))
