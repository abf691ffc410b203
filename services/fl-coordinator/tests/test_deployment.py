"""A real deployment on loopback: the coordinator (``medgate fl superlink``: SuperLink over
TLS with SuperNode authentication, and the control API beside it), three authorised
SuperNodes and one whose key was never registered. One FedGSCA run of two rounds is
started through the control API; the tests then check what crossed the wire, that the
intruder was refused and took no part, the rounds in PostgreSQL as the API serves them,
and the exported global model."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from medgate_common.storage import sha256_file
from medgate_fl import deploy
from medgate_fl.certs import make_certificates, make_site_key, make_site_keys
from medgate_fl.global_model import CARD, ONNX, WEIGHTS
from medgate_fl.task import build_model
from medgate_fl.wire import ARRAYS_DIGEST

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PER_SITE = 20
SITES = 3
RUN_CONFIG = {
    "num-server-rounds": 2, "per-site": PER_SITE, "test-count": 12, "min-sites": SITES, "fraction-evaluate": 0.0,
    "noise": "symmetric", "noise-rate": 0.3, "warmup-rounds": 1,
}  # fmt: skip
ALLOWED_CONFIG = {
    "lr",
    "local-epochs",
    "batch-size",
    "thresholds",
    "loss",
    "per-class-norm",
    "loss-scale",
    "site-bn",
    "method",
    "server-round",
    ARRAYS_DIGEST,  # a train message without weights: the digest of those the site kept
}
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


def _sent(wire: Path, server_round: int, message_type: str) -> bool:
    """Whether the strategy has logged sending ``message_type`` messages of ``server_round``."""
    if not wire.exists():
        return False
    for line in wire.read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:  # a line still being written
            continue
        if (e["direction"], e["round"], e["type"]) == ("sent", server_round, message_type):
            return True
    return False


@dataclass
class Federation:
    """The coordinator, three authorised sites and the intruder, running."""

    root: Path
    env: dict[str, str]
    api: str
    processes: dict[str, subprocess.Popen[bytes]]

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def registered(self) -> dict[str, int]:
        """Site name -> node id, as ``medgate fl superlink`` reported its registrations."""
        found = re.findall(r"^(site-\d+): node (\d+) \(registered\)$", self.log("superlink"), re.MULTILINE)
        return {site: int(node) for site, node in found}

    def submit(self, config: dict[str, Any]) -> dict[str, Any]:
        with httpx.Client(base_url=self.api, timeout=60) as api:
            submitted = api.post("/v1/runs", json={"config": config})
            assert submitted.status_code == 201, submitted.text
            run: dict[str, Any] = submitted.json()
            return run

    def wait(self, run_id: int, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.api, timeout=60) as api:
            while (run := api.get(f"/v1/runs/{run_id}").json())["status"] not in {"finished", "failed"}:
                assert time.monotonic() < deadline, run
                time.sleep(0.5)
        result: dict[str, Any] = run
        return result

    def get(self, path: str) -> Any:
        with httpx.Client(base_url=self.api, timeout=60) as api:
            response = api.get(path)
            assert response.status_code == 200, response.text
            return response.json()


@dataclass
class Deployment:
    """The first run (two FedGSCA rounds with every site) and what it left."""

    federation: Federation
    run: dict[str, Any]
    rounds: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    listed_nodes: set[int]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, cache: Path, pg_url: str) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("deployment")
    certs = root / "certs"
    make_certificates(certs)
    make_site_keys(certs, [f"site-{k}" for k in range(SITES)])
    intruder_key, _ = make_site_key(root / "intruder", "intruder")  # a valid key nobody registered
    home = root / "flwr-home"
    env = deploy.flower_env(home)
    port, control = _free_port(), _free_port()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    fed = Federation(root, env, f"http://127.0.0.1:{control}", processes)

    def start(name: str, cmd: list[str]) -> None:
        with (root / f"{name}.log").open("w") as log:
            processes[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)  # fmt: skip

    start("superlink", [
        str(deploy.BIN / "medgate"), "fl", "superlink", "--port", str(port), "--certs", str(certs),
        "--flwr-home", str(home), "--control-port", str(control), "--metrics-db", pg_url, "--runs-dir", str(root / "runs"),
    ])  # fmt: skip
    try:
        _wait_port(control, 90)  # the control API opens once the sites' keys are registered
        link, ca = f"127.0.0.1:{port}", certs / "ca.crt"
        for site in range(SITES):
            start(f"site-{site}", deploy.supernode_command(link, _free_port(), site, SITES, ca, cache,
                                                           certs / f"site-{site}.key"))  # fmt: skip
        start("intruder", deploy.supernode_command(link, _free_port(), SITES, SITES + 1, ca, cache, intruder_key))
        deadline = time.monotonic() + 60
        while fed.log("superlink").count("[Fleet.ActivateNode] Activated node_id=") < SITES:
            assert time.monotonic() < deadline, "the sites did not come online"
            time.sleep(0.2)
        yield fed
    finally:
        for p in processes.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def deployment(federation: Federation) -> Deployment:
    run = federation.wait(federation.submit(RUN_CONFIG)["id"])
    listing = subprocess.run(
        [str(deploy.BIN / "flwr"), "supernode", "list", "medgate", "--format", "json"],
        env=federation.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    nodes = {int(n["node-id"]) for n in json.loads(listing.stdout)["nodes"]}
    return Deployment(
        federation, run, federation.get(f"/v1/runs/{run['id']}/rounds"), federation.get("/v1/runs"), nodes
    )


def test_two_fedgsca_rounds_over_tls_send_only_weights_and_mixtures(deployment: Deployment) -> None:
    assert deployment.run["status"] == "finished", deployment.federation.log("superlink")[-3000:]
    wire = Path(deployment.run["out_dir"]) / "wire.jsonl"
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
    # Round 2's model went out with the query only: every SuperNode kept it in its context
    # state and trained it (no error replies, above) from a train message of config alone.
    assert all(set(e["content"]) == {"config"} and ARRAYS_DIGEST in e["content"]["config"]["items"] for e in round2)
    queries = [e for e in entries if e["direction"] == "sent" and e["type"] == "query.gmm"]
    assert all(set(e["content"]) == {"arrays", "config"} for e in queries)


def test_supernode_with_an_unregistered_key_is_refused_and_gets_no_task(deployment: Deployment) -> None:
    fed = deployment.federation
    registered = fed.registered()
    assert sorted(registered) == [f"site-{k}" for k in range(SITES)]
    # The SuperLink knows exactly the registered nodes, and only they received or sent messages.
    assert deployment.listed_nodes == set(registered.values())
    wire = Path(deployment.run["out_dir"]) / "wire.jsonl"
    assert {json.loads(line)["node"] for line in wire.read_text().splitlines()} == set(registered.values())
    # The intruder was turned away when it tried to activate, and gave up.
    assert fed.processes["intruder"].wait(timeout=30) != 0
    assert "Failed to activate SuperNode" in fed.log("intruder")
    assert "No SuperNode found with the given public key" in fed.log("superlink")
    for site in range(SITES):
        assert fed.processes[f"site-{site}"].poll() is None  # the authorised sites are still serving


def test_round_metrics_are_served_by_the_control_api(deployment: Deployment) -> None:
    run, rounds = deployment.run, deployment.rounds
    assert run["id"] in {r["id"] for r in deployment.runs}
    assert run["config"]["num-server-rounds"] == 2 and "metrics-db" not in run["config"]  # it may hold a password
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert r["replies"] == SITES
        assert r["bytes"] > 2 * SITES * 4 * sum(v.numel() for v in build_model(4).state_dict().values())
        assert r["seconds"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
    # Round 2 is a FedGSCA round (after one warm-up round): the sites scored their selection.
    assert 0.0 <= rounds[1]["selection_precision"] <= 1.0 and 0.0 <= rounds[1]["selection_recall"] <= 1.0
    # Round 2 also carried the selector's query: the model went out once more.
    assert rounds[1]["bytes"] > rounds[0]["bytes"]
    assert run["summary"]["rounds"] == 2 and run["summary"]["accuracy"] == rounds[1]["accuracy"]


def test_global_model_is_exported_after_the_run(deployment: Deployment) -> None:
    out = Path(deployment.run["out_dir"])
    card = json.loads((out / CARD).read_text())
    assert (out / WEIGHTS).stat().st_size > 0
    assert card["sha256"] == sha256_file(out / ONNX) == deployment.run["summary"]["onnx-sha256"]
    assert card["rounds"] == 2 and card["strategy"] == "fedgsca" and card["task"] == "multiclass"
    assert card["run_config"]["num-server-rounds"] == 2 and "metrics-db" not in card["run_config"]
    assert card["held_out_metrics"]["accuracy"] == pytest.approx(deployment.rounds[1]["accuracy"], abs=1e-4)
    assert card["onnx_torch_max_abs_diff"] <= 1e-4


def test_site_killed_during_round_two_the_round_completes_with_the_other_two(federation: Federation) -> None:
    """SIGKILL one site's SuperNode (its whole process group: SuperNode, SuperExec, ClientApp)
    once round 2's train messages are out. With ``min-replies=2`` the SuperLink's reply
    timeout (``round-timeout``) ends the wait and round 2 is aggregated from the two others.

    Runs last: it leaves the federation one site short."""
    config = {**RUN_CONFIG, "min-sites": 2, "min-replies": 2, "round-timeout": 20}
    submitted = federation.submit(config)
    wire = Path(submitted["out_dir"]) / "wire.jsonl"
    victim = federation.processes["site-2"]
    deadline = time.monotonic() + 120
    while not _sent(wire, 2, "train"):
        assert time.monotonic() < deadline, "round 2 never started"
        time.sleep(0.1)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    run = federation.wait(submitted["id"])
    assert run["status"] == "finished"
    assert run["summary"]["failed-rounds"] == []
    rounds = federation.get(f"/v1/runs/{submitted['id']}/rounds")
    assert [(r["round"], r["replies"]) for r in rounds] == [(1, SITES), (2, SITES - 1)]

    nodes = federation.registered()
    entries = [json.loads(line) for line in wire.read_text().splitlines()]
    answered = {e["node"] for e in entries if e["round"] == 2 and e["type"] == "train" and e["direction"] == "received"
                and not e["error"]}  # fmt: skip
    assert answered == {nodes["site-0"], nodes["site-1"]}
    sent = {e["node"] for e in entries if e["round"] == 2 and e["type"] == "train" and e["direction"] == "sent"}
    assert nodes["site-2"] in sent  # it was asked, and never answered
