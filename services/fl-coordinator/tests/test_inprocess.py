"""The in-process federation: the real strategies and ClientApp through a LocalGrid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import Message

from medgate_fl.inprocess import NODE_BASE, Federation, federate
from medgate_fl.strategies.fedgsca import FedGSCA

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
