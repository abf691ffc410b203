"""Celery worker processes started and watched by another process.

``medgate up`` runs its single worker this way; the pipeline benchmark and the fault tests
start one worker per queue, as a hospital deployment would. A worker runs in its own
session (process group), so stopping or killing it takes its pool processes along, and
it learns everything from environment variables, like a container would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import AliasChoices

from medgate_common.errors import TransientError
from medgate_common.schemas.workflow import ALL_QUEUES
from medgate_gateway.settings import GatewaySettings


def settings_env(settings: GatewaySettings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes another process build the same settings.

    Every field set explicitly is written under its variable (``MEDGATE_GW_<NAME>``, or the
    shared ``MEDGATE_<NAME>``), and the database, storage and broker are written resolved,
    so a child never derives a different default from its own home directory.
    """
    env = dict(os.environ if base is None else base)
    fields = type(settings).model_fields
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        alias = fields[name].validation_alias
        key = alias.choices[0] if isinstance(alias, AliasChoices) else f"MEDGATE_GW_{name.upper()}"
        env[str(key)] = json.dumps(value) if isinstance(value, dict | list | bool) else str(value)
    env.update(
        {
            "MEDGATE_HOME": str(settings.home),
            "MEDGATE_STORAGE_URI": settings.resolved_storage_uri(),
            "MEDGATE_BROKER_URL": settings.resolved_broker_url(),
            "MEDGATE_GW_DATABASE_URL": settings.resolved_database_url(),
        }
    )
    return env


class WorkerProcess:
    def __init__(
        self,
        env: dict[str, str],
        *,
        name: str = "worker",
        queues: Sequence[str] = ALL_QUEUES,
        concurrency: int = 1,
        pool: str = "prefork",
        extra_tasks: Sequence[str] = (),
        log_dir: Path,
    ) -> None:
        self.env = env
        self.name = name
        self.queues = list(queues)
        self.concurrency = concurrency
        self.pool = pool
        self.extra_tasks = list(extra_tasks)
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def ready_file(self) -> Path:
        return self.log_dir / f"{self.name}.ready"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "medgate_common.cli", "worker", "--queues", ",".join(self.queues)]
        cmd += ["--concurrency", str(self.concurrency), "--pool", self.pool, "--hostname", f"{self.name}@%h"]
        cmd += ["--ready-file", str(self.ready_file)]
        for module in self.extra_tasks:
            cmd += ["--tasks", module]
        return cmd

    def start(self, timeout: float = 90.0) -> None:
        """Start the worker and return once it consumes from its queues."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise TransientError(f"worker {self.name} exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise TransientError(f"worker {self.name} did not start within {timeout:g} s; see {self.log_path}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown: finish or hand back the current tasks, then exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            # Only the main process: it lets its pool finish the current tasks (warm
            # shutdown). A SIGTERM to the whole group would kill the pool processes at once.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_group()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the worker and its pool, as a crashed host would lose them."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def _reap_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # stray pool processes, if any
