"""Test helpers more than one package's tests use (found through the root conftest's path).

Not a conftest: package conftests and fixture modules import these by name, which the
several ``conftest`` modules of the repository make ambiguous.
"""

from __future__ import annotations

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
