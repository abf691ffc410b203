"""The control API against the real PostgreSQL server (and the SQLite file it falls back to):
runs and rounds as the ServerApp records them, problem+json errors, and a submission the
SuperLink does not take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shared_fixtures import problem, serve_in_thread

from medgate_fl import deploy
from medgate_fl.control import create_app
from medgate_fl.rundb import RoundMetrics, RunStore
from medgate_fl.settings import FlSettings

pytestmark = pytest.mark.integration
RUN_ID = 2**63 + 12345  # Flower run ids are unsigned 64-bit numbers


@pytest.fixture(params=["postgresql", "sqlite"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> FlSettings:
    home = tmp_path / "flwr-home"
    # A SuperLink connection to a port nothing listens on: submissions must fail cleanly.
    deploy.write_cli_config(home, "127.0.0.1:1", None)
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""  # "": <home>/fl.db
    return FlSettings(home=tmp_path, database_url=url, runs_dir=tmp_path / "runs", flwr_home=home)


@pytest.fixture
def api(settings: FlSettings) -> Iterator[httpx.Client]:
    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_rounds_written_by_the_server_app_are_served_in_order(api: httpx.Client, settings: FlSettings) -> None:
    store = RunStore(settings.resolved_database_url())
    try:
        # The ServerApp may write before the submitter records the run: both orders end in one row.
        store.ensure_run(RUN_ID, {"strategy": "fedgsca"}, "", "running")
        store.add_round(RUN_ID, RoundMetrics(round=2, bytes=900, seconds=1.5, replies=2, accuracy=0.5, macro_f1=0.25,
                                             selection_precision=0.9, selection_recall=0.8))  # fmt: skip
        store.add_round(RUN_ID, RoundMetrics(round=1, bytes=600, seconds=1.0, replies=3, accuracy=0.4, macro_f1=0.2))
        store.ensure_run(RUN_ID, {"strategy": "fedgsca", "num-server-rounds": 2, "metrics-db": "postgresql://u:pw@h/db"},
                         "/out", "submitted")  # fmt: skip
        store.set_status(RUN_ID, "finished", {"rounds": 2, "accuracy": 0.5})
    finally:
        store.dispose()

    run = api.get(f"/v1/runs/{RUN_ID}")
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["id"] == RUN_ID and body["status"] == "finished"
    assert body["config"] == {"strategy": "fedgsca", "num-server-rounds": 2} and body["out_dir"] == "/out"
    assert body["summary"] == {"rounds": 2, "accuracy": 0.5}
    assert RUN_ID in [r["id"] for r in api.get("/v1/runs").json()]

    rounds = api.get(f"/v1/runs/{RUN_ID}/rounds").json()
    assert rounds == [
        {"round": 1, "accuracy": 0.4, "macro_f1": 0.2, "selection_precision": None, "selection_recall": None,
         "bytes": 600, "seconds": 1.0, "replies": 3},
        {"round": 2, "accuracy": 0.5, "macro_f1": 0.25, "selection_precision": 0.9, "selection_recall": 0.8,
         "bytes": 900, "seconds": 1.5, "replies": 2},
    ]  # fmt: skip


def test_unknown_run_is_a_problem(api: httpx.Client) -> None:
    problem(api.get("/v1/runs/7"), 404, "not_found")
    problem(api.get("/v1/runs/7/rounds"), 404, "not_found")
    problem(api.get("/v1/runs/not-a-number"), 422, "invalid_input")


def test_caller_cannot_set_coordinator_paths_or_unknown_keys(api: httpx.Client, settings: FlSettings) -> None:
    body = problem(api.post("/v1/runs", json={"config": {"out-dir": "/etc", "num-server-rounds": 2}}), 400,
                   "invalid_input")  # fmt: skip
    assert "out-dir" in body["detail"]
    problem(api.post("/v1/runs", json={"config": {"metrics-db": "sqlite://"}}), 400, "invalid_input")
    problem(api.post("/v1/runs", json={"config": {"lr": [1, 2]}}), 422, "invalid_input")
    assert not settings.runs_dir.exists() or not any(settings.runs_dir.iterdir())


def test_values_a_run_cannot_use_are_refused_before_the_superlink(api: httpx.Client, settings: FlSettings) -> None:
    before = api.get("/v1/runs").json()
    config = {"batch-size": 1, "task": "binery", "num-server-rounds": 2}
    body = problem(api.post("/v1/runs", json={"config": config}), 400, "invalid_input")
    assert [p.split(" = ")[0] for p in body["details"]["problems"]] == ["batch-size", "task"]
    assert "batch-size" in body["detail"] and "binery" in body["detail"]
    body = problem(api.post("/v1/runs", json={"config": {"num-server-rounds": 2, "warmup-rounds": 2}}), 400,
                   "invalid_input")  # fmt: skip
    assert "never select" in body["detail"]
    # Nothing was written or submitted: no app folder, no run row.
    assert not settings.runs_dir.exists() or not any(settings.runs_dir.iterdir())
    assert api.get("/v1/runs").json() == before


def test_a_run_the_superlink_does_not_take_is_a_502(api: httpx.Client) -> None:
    before = api.get("/v1/runs").json()
    body = problem(api.post("/v1/runs", json={"config": {"num-server-rounds": 2}}), 502, "run_not_submitted")
    assert "unavailable" in body["details"]["reason"]
    assert api.get("/v1/runs").json() == before
