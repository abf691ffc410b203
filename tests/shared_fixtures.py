"""Test helpers more than one package's tests use (found through the root conftest's path).

Not a conftest: package conftests and fixture modules import these by name, which the
several ``conftest`` modules of the repository make ambiguous.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """An ASGI ``app`` served by uvicorn on a free loopback port (lifespan included), in a
    thread; yields its base URL. Gateway and service API tests share it."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def drain_step_events(app: Any) -> list[Any]:
    """Every step event waiting on the gateway queue of ``app``'s broker, acknowledged, in order."""
    from medgate_common.schemas.workflow import GATEWAY_QUEUE, StepEvent

    found = []
    with app.connection_for_read() as conn, conn.SimpleQueue(GATEWAY_QUEUE) as queue:
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return found
            found.append(StepEvent.model_validate(message.decode()[0][0]))
            message.ack()


def store_study(storage: Any, *series: list[bytes]) -> Any:
    """Put each series' instances where the gateway would and describe them as it does (a
    StudyRef for a step request)."""
    import io

    import pydicom

    from medgate_common.schemas import SeriesRef, StudyRef

    refs = []
    study_uid = ""
    for instances in series:
        first = pydicom.dcmread(io.BytesIO(instances[0]), stop_before_pixels=True)
        study_uid, series_uid = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
        uris = [storage.put_bytes(f"dicom/{study_uid}/{series_uid}/{n}.dcm", data) for n, data in enumerate(instances)]
        refs.append(
            SeriesRef(
                series_instance_uid=series_uid,
                modality=str(first.Modality),
                instance_count=len(uris),
                instance_uris=tuple(uris),
            )
        )
    return StudyRef(study_instance_uid=study_uid, series=tuple(refs))


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, checked for its status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body


def metric(client: Any, name: str, **labels: str) -> float:
    """A sample of the service's /metrics (0 when the series does not exist yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def dockerfile_instructions(path: Any) -> list[tuple[str, str]]:
    """(KEYWORD, rest) of every instruction of a Dockerfile, continuation lines joined."""
    import re

    joined = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def assert_copies_exist(dockerfile: Any, root: Any) -> None:
    """Every COPY source of ``dockerfile`` exists under ``root`` (the build context)."""
    import shlex

    steps = dockerfile_instructions(dockerfile)
    copies = [shlex.split(rest) for keyword, rest in steps if keyword == "COPY" and "--from" not in rest]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (root / source).exists(), f"COPY {source}: no such path (the context is the repository root)"


def assert_serving_image(dockerfile: Any, package: str, command: str) -> str:
    """A service image: built from python:3.11-slim with ``package`` and libs/common and nothing
    of training (the build fails if torch came along), run as a non-root user, with a health
    check on /healthz and ``command`` (e.g. ``medgate iqa serve``) listening on 0.0.0.0.
    Returns the pip install line(s) for further checks."""
    steps = dockerfile_instructions(dockerfile)
    installs = " ".join(rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest)
    assert package in installs and "libs/common" in installs
    assert "[training]" not in installs and "torch.txt" not in installs and "libs/ml" not in installs
    assert "find_spec('torch') is not None" in installs  # the build itself fails if torch came along
    assert steps[0][1].startswith("python:3.11-slim") and steps[0][0] == "FROM"
    final_stage = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    [user] = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert user not in ("root", "0")
    [health] = [rest for keyword, rest in final_stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in health
    [cmd] = [rest for keyword, rest in final_stage if keyword == "CMD"]
    words = ", ".join(f'"{w}"' for w in command.split())
    assert cmd.startswith(f'[{words}, "--host", "0.0.0.0"')
    return installs


def dciodvfy(path: Path) -> list[str]:
    """dicom3tools' ``dciodvfy`` error and warning lines for ``path`` (it always exits 0)."""
    from conftest import require_tool

    proc = subprocess.run([require_tool("dciodvfy"), str(path)], capture_output=True, text=True, check=False)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(("Error", "Warning"))]


def step_request(
    storage: Any, step: Any, study: Any, *, dispatch: int = 1, upstream: dict[str, object] | None = None
) -> Any:
    """The request the gateway sends ``step`` (a StepName) for ``study`` in run 1 of job
    ``job-1``, its output folder in ``storage``; ``upstream``: the earlier steps' results."""
    from medgate_common.schemas.workflow import UPSTREAM, StepRequest

    return StepRequest(
        job_id="job-1",
        step=step,
        run=1,
        dispatch=dispatch,
        study=study,
        output_prefix=storage.uri_for(f"jobs/job-1/run1/{step.value}/d{dispatch}"),
        params={UPSTREAM: upstream} if upstream is not None else {},
    )


@contextmanager
def step_app(settings: Any, register: Any, step: Any) -> Iterator[Any]:
    """A Celery app of ``settings`` with ``step`` registered by its service's ``tasks.register``."""
    from medgate_common.tasking import make_celery

    celery = make_celery(settings)
    register(celery, step)
    try:
        yield celery
    finally:
        celery.close()


def dicom_parts(instances: Sequence[bytes], field: str = "files") -> list[tuple[str, tuple[str, bytes, str]]]:
    """``instances`` as the multipart file parts of an upload (``IM0000.dcm``, ...)."""
    return [(field, (f"IM{i:04d}.dcm", data, "application/dicom")) for i, data in enumerate(instances)]


MLSERVER_VENV = Path(os.environ.get("MEDGATE_MLSERVER_VENV", Path(__file__).resolve().parents[1] / ".venv-mlserver"))
MLSERVER_RUNTIMES = Path(__file__).resolve().parents[1] / "deploy" / "mlserver" / "medgate_runtimes.py"


def mlserver_repository(folder: Path) -> Path:
    """An empty MLServer model repository with deploy/mlserver's runtimes in it; the test
    adds one folder per model with its model-settings.json."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MLSERVER_RUNTIMES, folder / MLSERVER_RUNTIMES.name)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MLServerProcess:
    """``mlserver start`` from the MLServer venv (scripts/setup-mlserver.sh) on free loopback
    ports, in-process workers, no metrics server. ``start`` waits until every model is ready."""

    def __init__(self, repository: Path, log: Path) -> None:
        self.repository = repository
        self.log = log
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 30.0) -> None:
        import httpx
        import pytest

        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_HTTP_PORT": str(port),
            "MLSERVER_GRPC_PORT": str(_free_port()),
            "MLSERVER_PARALLEL_WORKERS": "0",
            "MLSERVER_METRICS_ENDPOINT": "",
            "OMP_NUM_THREADS": "1",
        }
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(self.repository)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                break
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"MLServer did not become ready; log:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
