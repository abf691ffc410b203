"""The distributed mode on one machine: a gateway process and a worker per queue.

What a hospital runs on several machines (``medgate gateway serve``, ``medgate gateway
worker``, one ``medgate <service> worker`` per queue, Redis, PostgreSQL), started here as
local processes sharing one broker and one database. The pipeline benchmark drives it; the
workflow fault tests kill and restart its parts.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from medgate_common.errors import TransientError
from medgate_common.schemas.workflow import GATEWAY_QUEUE
from medgate_gateway.bench.orthanc import free_port
from medgate_gateway.db.migrate import migrate
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.processes import WorkerProcess, settings_env

MODEL_QUEUES = ("iqa", "segmentation", "vlm")
WORKLOAD = "medgate_gateway.bench.workload"


@dataclass
class DistributedStack:
    settings: GatewaySettings
    extra_env: dict[str, str] = field(default_factory=dict)
    #: One worker per model queue (as deployed), or one worker for all three (lighter).
    split_model_queues: bool = True
    model_concurrency: int = 1
    gateway_concurrency: int = 2
    extra_tasks: Sequence[str] = (WORKLOAD,)
    gateway: subprocess.Popen[bytes] | None = None
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**settings_env(self.settings), **self.extra_env}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self) -> None:
        migrate(self.settings.resolved_database_url())
        log_dir = self.settings.home / "logs"
        groups = [list(MODEL_QUEUES)] if not self.split_model_queues else [[q] for q in MODEL_QUEUES]
        for queues in groups:
            name = "model-" + "-".join(queues)
            self.workers[name] = WorkerProcess(
                self.env,
                name=name,
                queues=queues,
                concurrency=self.model_concurrency,
                extra_tasks=self.extra_tasks,
                log_dir=log_dir,
            )
        self.workers["gateway"] = WorkerProcess(
            self.env,
            name="gateway-worker",
            queues=[GATEWAY_QUEUE],
            concurrency=self.gateway_concurrency,
            log_dir=log_dir,
        )
        for worker in self.workers.values():
            worker.launch()
        self.start_gateway()
        for worker in self.workers.values():
            worker.wait_ready()

    def start_gateway(self, timeout: float = 60.0) -> None:
        """``medgate gateway serve --no-listener``: HTTP API, sweeper and watchdog."""
        log = (self.settings.home / "logs" / "gateway.log").open("ab")
        cmd = [sys.executable, "-m", "medgate_common.cli", "gateway", "serve", "--no-listener"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.settings.http_port)]
        self.gateway = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.gateway.poll() is not None:
                raise TransientError(f"the gateway exited with {self.gateway.returncode}; see its log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TransientError("the gateway did not answer /healthz in time")
            time.sleep(0.1)

    def stop_gateway(self, *, kill: bool = False) -> None:
        if self.gateway is None:
            return
        self.gateway.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.gateway.wait(30)
        except subprocess.TimeoutExpired:
            self.gateway.kill()
            self.gateway.wait()
        self.gateway = None

    def stop(self) -> None:
        self.stop_gateway()
        for worker in self.workers.values():
            worker.stop()


class RedisServer:
    """A private redis-server on a free port, without persistence (the benchmark's broker;
    the fault tests restart it)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.workdir)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + timeout
        while not self._pings():
            if time.monotonic() > deadline:
                raise TransientError("redis-server did not answer in time")
            time.sleep(0.05)

    def _pings(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def queued(self, queue: str) -> int:
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.llen(queue))
        finally:
            client.close()
