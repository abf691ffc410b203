"""Two FedGSCA rounds across a real SuperLink and three real SuperNodes on loopback, over
TLS with certificates from :mod:`medgate_fl.certs`, and what crossed the wire."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medgate_fl import deploy
from medgate_fl.certs import make_certificates
from medgate_fl.task import build_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PER_SITE = 20
SITES = 3
ALLOWED_CONFIG = {"lr", "local-epochs", "thresholds", "loss", "method", "server-round"}
GMM_KEYS = {"gmm-weights", "gmm-means", "gmm-variances"}
TRAIN_METRICS = {
    "train-loss",
    "num-examples",
    "selection-precision",
    "selection-recall",
    "clean-fraction",
    "pseudo-fraction",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} never opened")


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    certs = tmp_path / "certs"
    make_certificates(certs)
    home = tmp_path / "flwr-home"
    env = deploy.flower_env(home)
    port = _free_port()
    deploy.write_cli_config(home, f"127.0.0.1:{port}", certs / "ca.crt")
    log = (tmp_path / "processes.log").open("w")
    procs = [
        subprocess.Popen(
            deploy.superlink_command("127.0.0.1", port, certs), env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ]  # fmt: skip
    try:
        _wait_port(port)
        for site in range(SITES):
            cmd = deploy.supernode_command(
                f"127.0.0.1:{port}", _free_port(), site, SITES, certs / "ca.crt", tmp_path / "cache"
            )
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        yield tmp_path, env
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()


def test_two_fedgsca_rounds_over_tls_send_only_weights_and_mixtures(federation: tuple[Path, dict[str, str]]) -> None:
    root, env = federation
    wire = root / "wire.jsonl"
    app = deploy.write_app(
        root / "app",
        {
            "num-server-rounds": 2, "per-site": PER_SITE, "test-count": 12, "min-sites": SITES,
            "fraction-evaluate": 0.0, "noise": "symmetric", "noise-rate": 0.3, "warmup-rounds": 1,
            "wire-log": str(wire), "out-dir": str(root / "out"),
        },
    )  # fmt: skip
    run = subprocess.run(deploy.run_command(app), env=env, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (root / "out" / "global.pt").exists()

    entries = [json.loads(line) for line in wire.read_text().splitlines()]
    model_shapes = {k: list(v.shape) for k, v in build_model(4).state_dict().items()}
    seen = {(e["round"], e["direction"], e["type"]) for e in entries}
    assert seen == {
        (1, "sent", "train"), (1, "received", "train"),
        (2, "sent", "query.gmm"), (2, "received", "query.gmm"), (2, "sent", "train"), (2, "received", "train"),
    }  # fmt: skip
    for e in entries:
        assert not e["error"], e
        assert (
            sum(
                1
                for x in entries
                if x["round"] == e["round"] and x["direction"] == e["direction"] and x["type"] == e["type"]
            )
            == SITES
        )
        for name, record in e["content"].items():
            if record["kind"] == "arrays":
                # Weights only: exactly the model's tensors, nothing shaped like images or labels.
                assert name == "arrays"
                assert {k: v["shape"] for k, v in record["items"].items()} == model_shapes
                continue
            for key, value in record["items"].items():
                # No vector longer than a mixture's two components: no per-sample list.
                assert value["type"] != "list" or value["len"] == 2, (name, key, value)
                assert value["type"] in {"int", "float", "str", "bool", "list"}
            keys = set(record["items"])
            if e["direction"] == "sent":
                assert name in {"arrays", "config"} and keys <= ALLOWED_CONFIG | GMM_KEYS, keys
            elif e["type"] == "query.gmm":
                assert name == "gmm" and keys == {"weights", "means", "variances", "num-examples"}
            else:
                assert name == "metrics" and keys <= TRAIN_METRICS, keys
    received_train = [e for e in entries if e["direction"] == "received" and e["type"] == "train"]
    assert all(set(e["content"]) == {"arrays", "metrics"} for e in received_train)
    round2 = [e for e in entries if e["round"] == 2 and e["direction"] == "sent" and e["type"] == "train"]
    assert all(set(e["content"]["config"]["items"]) >= GMM_KEYS for e in round2)
