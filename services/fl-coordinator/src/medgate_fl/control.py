"""The coordinator's control API: start a federated run and read its rounds.

``POST /v1/runs`` writes the Flower app with the caller's run config and submits it to the
local SuperLink with ``flwr run`` (as :mod:`medgate_fl.deploy` does); the run's id is
Flower's. The ServerApp itself records the run's status and every round's metrics in the
database (``metrics-db``, set here), which ``GET /v1/runs/{id}`` and ``.../rounds`` read.
Paths on the coordinator (``out-dir``, ``wire-log``, ``metrics-db``, ``cache-dir``) are
chosen here, never by the caller, and values out of range (:mod:`medgate_fl.runconfig`) are
refused before the SuperLink sees the run. Errors are problem+json (:mod:`medgate_common.api`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from medgate_common.api.problems import install_error_handlers
from medgate_common.errors import InputError, MedgateError, NotFoundError
from medgate_fl import deploy
from medgate_fl.runconfig import RUN_KEYS, ConfigValue, problems
from medgate_fl.rundb import FlRound, FlRun, RunStore, migrate
from medgate_fl.settings import FlSettings

SUBMIT_TIMEOUT = 120.0


class SubmitError(MedgateError):
    """The SuperLink did not accept the run (down, refused, or ``flwr`` failed)."""

    code = "run_not_submitted"
    http_status = 502


class RunRequest(BaseModel):
    config: dict[str, ConfigValue] = Field(default_factory=dict, description="Run config keys (docs/fl.md)")


class RunView(BaseModel):
    id: int
    status: str
    config: dict[str, Any]
    out_dir: str
    summary: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: FlRun) -> RunView:
        return cls(id=int(row.id), status=row.status, config=row.config, out_dir=row.out_dir, summary=row.summary,
                   created_at=row.created_at, updated_at=row.updated_at)  # fmt: skip


class RoundView(BaseModel):
    round: int
    accuracy: float | None
    macro_f1: float | None
    selection_precision: float | None
    selection_recall: float | None
    bytes: int
    seconds: float
    replies: int

    @classmethod
    def of(cls, row: FlRound) -> RoundView:
        return cls(round=row.round, accuracy=row.accuracy, macro_f1=row.macro_f1,
                   selection_precision=row.selection_precision, selection_recall=row.selection_recall,
                   bytes=row.bytes, seconds=row.seconds, replies=row.replies)  # fmt: skip


async def get_settings(request: Request) -> FlSettings:
    settings: FlSettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> RunStore:
    store: RunStore = request.app.state.store
    return store


SettingsDep = Annotated[FlSettings, Depends(get_settings)]
StoreDep = Annotated[RunStore, Depends(get_store)]
router = APIRouter(prefix="/v1/runs", tags=["runs"])


def submit(settings: FlSettings, config: dict[str, ConfigValue]) -> tuple[int, dict[str, ConfigValue]]:
    """Write the app folder and ``flwr run`` it; the Flower run id and the full run config."""
    unknown = sorted(set(config) - RUN_KEYS)
    if unknown:
        raise InputError(f"unknown or reserved run config keys: {', '.join(unknown)}", allowed=sorted(RUN_KEYS))
    bad = problems(config)
    if bad:
        raise InputError(f"run config values a run cannot use: {'; '.join(bad)}", problems=bad)
    folder = settings.runs_dir / uuid.uuid4().hex
    out = folder / "out"
    full: dict[str, ConfigValue] = {
        **config,
        "out-dir": str(out),
        "wire-log": str(out / "wire.jsonl"),
        "metrics-db": settings.resolved_database_url(),
    }
    if settings.cache_dir is not None:
        full["cache-dir"] = str(settings.cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = deploy.write_app(folder / "app", full)
    cmd = deploy.run_command(app, settings.superlink_name, stream=False)
    try:
        done = subprocess.run(  # noqa: S603 - our own flwr binary, arguments we built
            cmd, env=deploy.flower_env(settings.flwr_home), capture_output=True, text=True, timeout=SUBMIT_TIMEOUT
        )
        reply = json.loads(done.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        raise SubmitError(f"flwr run gave no answer: {type(exc).__name__}") from exc
    if not reply.get("success") or "run-id" not in reply:
        raise SubmitError("the SuperLink did not accept the run", reason=str(reply.get("error-message", ""))[-500:])
    return int(reply["run-id"]), full


@router.post("", status_code=201)
def start_run(body: RunRequest, settings: SettingsDep, store: StoreDep) -> RunView:
    """Start a run on the SuperLink with ``body.config``; answers with Flower's run id."""
    run_id, full = submit(settings, body.config)
    store.ensure_run(run_id, dict(full), str(full["out-dir"]), "submitted")
    return RunView.of(_run(store, run_id))


@router.get("")
def list_runs(store: StoreDep, limit: int = 100) -> list[RunView]:
    return [RunView.of(row) for row in store.runs(limit)]


def _run(store: RunStore, run_id: int) -> FlRun:
    row = store.run(run_id)
    if row is None:
        raise NotFoundError(f"no run {run_id}")
    return row


@router.get("/{run_id}")
def get_run(run_id: int, store: StoreDep) -> RunView:
    """The run as the ServerApp last recorded it: submitted, running, finished or failed."""
    return RunView.of(_run(store, run_id))


@router.get("/{run_id}/rounds")
def get_rounds(run_id: int, store: StoreDep) -> list[RoundView]:
    """Every finished round's metrics, in order."""
    _run(store, run_id)
    return [RoundView.of(row) for row in store.rounds(run_id)]


def create_app(settings: FlSettings) -> FastAPI:
    """The control API for ``settings``; the database is migrated and opened at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        migrate(url)
        app.state.store = RunStore(url)
        try:
            yield
        finally:
            app.state.store.dispose()

    app = FastAPI(title="MedGate FL control", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app, "FL control API")
    app.include_router(router)
    return app
