"""The embedded mode with real processes: ``medgate up``, and its worker dying mid-task.

SQLite database, SQLite broker (kombu's SQLAlchemy transport), one worker process for every
queue: no server. The worker-kill test runs the benchmark's calibrated workload steps,
because the real model services are not built yet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import sample_path
from pynetdicom import AE
from workflow_support import executions, ingest_study, wait_for, wait_terminal

from medgate_common.schemas import JobStatus
from medgate_gateway.bench.orthanc import free_port
from medgate_gateway.bench.stack import WORKLOAD
from medgate_gateway.embedded import EmbeddedStack
from medgate_gateway.settings import GatewaySettings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[EmbeddedStack]:
    settings = GatewaySettings(
        home=tmp_path / "home",
        dicom_host="127.0.0.1",
        dicom_port=0,
        stable_seconds=2.0,  # longer than any gap between two instances of one test study, even under load
        sweep_interval_seconds=0.2,
        watchdog_interval_seconds=0.5,
    )
    extra = {"MEDGATE_WORKLOAD_LOG": str(tmp_path / "runs.jsonl"), "MEDGATE_WORKLOAD_SECONDS_SEGMENTATION": "3"}
    embedded = EmbeddedStack(settings, http=False, extra_tasks=(WORKLOAD,), extra_env=extra, supervise_interval=0.2)
    embedded.start()
    yield embedded
    embedded.stop()


def test_the_embedded_worker_killed_mid_task_is_replaced_and_the_job_finishes_once(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    assert stack.context is not None and stack.worker is not None
    assert stack.settings.resolved_broker_url().startswith("mgsqla+sqlite:///")
    study = ingest_study(stack.context)
    log = tmp_path / "runs.jsonl"
    wait_for(lambda: [e for e in executions(log) if e["step"] == "segmentation"], 30, "segmentation to start")
    old_pid = stack.worker.pid
    stack.worker.kill()
    [job] = wait_terminal(stack.context, [study], 90)
    assert job.status is JobStatus.review_ready
    assert stack.worker.pid != old_pid and stack.worker.restarts == 1
    runs = [e for e in executions(log) if e["step"] == "segmentation"]
    assert len(runs) == 2  # once killed, once on the new worker
    [seg] = [s for s in job.steps if s.name == "segmentation"]
    assert seg.dispatches == 2 and seg.duplicates == 0


def medgate_cmd() -> str:
    exe = shutil.which("medgate")
    assert exe, "medgate is not on PATH; run scripts/setup.sh"
    return exe


def test_medgate_up_runs_everything_without_a_server(tmp_path: Path) -> None:
    http_port, dicom_port = free_port(), free_port()
    env = {
        **os.environ,
        "MEDGATE_HOME": str(tmp_path / "home"),
        "MEDGATE_GW_HTTP_PORT": str(http_port),
        "MEDGATE_GW_DICOM_PORT": str(dicom_port),
        "MEDGATE_GW_DICOM_HOST": "127.0.0.1",
        "MEDGATE_GW_STABLE_SECONDS": "0.5",
        "MEDGATE_GW_SWEEP_INTERVAL_SECONDS": "0.2",
        "MEDGATE_NEW_PASSWORD": "tech-password-123",
    }
    added = subprocess.run(
        [medgate_cmd(), "gateway", "user", "add", "tech", "--role", "technologist", "--api-key"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = added.stdout.strip().split()[-1]
    proc = subprocess.Popen([medgate_cmd(), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{http_port}"
        wait_for(lambda: _healthy(base), 90, "medgate up to serve HTTP")
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", dicom_port, ae_title="MEDGATE")
        assert assoc.is_established
        import pydicom

        ds = pydicom.dcmread(sample_path("explicit"))
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        headers = {"Authorization": f"Bearer {key}"}

        def finished() -> list[dict[str, object]] | None:
            jobs = httpx.get(base + "/api/v1/jobs", headers=headers).json()
            return jobs if jobs and jobs[0]["status"] in ("review_ready", "quality_rejected", "failed") else None

        [job] = wait_for(finished, 60, "the job to finish")
        assert job["study_instance_uid"] == str(ds.StudyInstanceUID)
        # the quality gate judges the study; the lesion model cannot take one slice and says so
        # (the job still reaches review); reasoning then has no segmentation to report on and
        # says so for that series
        iqa = job["steps"][0]
        assert iqa["name"] == "iqa" and iqa["status"] == "done", iqa
        rejected = iqa["result"]["verdict"] == "reject"
        assert job["status"] == ("quality_rejected" if rejected else "review_ready")
        if rejected:
            assert [s["status"] for s in job["steps"][1:]] == ["skipped", "skipped", "done"]
        else:
            assert [s["status"] for s in job["steps"][1:]] == ["done", "done", "done"]
            [refused] = job["steps"][1]["result"]["not_segmented"]
            assert refused["code"] == "single_slice" and "single slice" in refused["reason"]
            reasoning = job["steps"][2]["result"]
            assert reasoning["series"] == []
            [unreported] = reasoning["not_reasoned"]
            assert unreported["code"] == "missing_segmentation", unreported
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "MedGate is up" in output and "mgsqla+sqlite" in output


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_service_worker_consumes_only_its_own_queue(tmp_path: Path) -> None:
    """``medgate iqa worker`` answers iqa steps and leaves other queues alone."""
    import datetime as dt

    from medgate_common.schemas import StudyRef
    from medgate_common.schemas.workflow import StepEvent, StepEventKind, StepName, StepRequest
    from medgate_common.settings import MedgateSettings
    from medgate_common.tasking import make_celery

    home = tmp_path / "home"
    env = {**os.environ, "MEDGATE_HOME": str(home)}
    ready = tmp_path / "iqa.ready"
    worker = subprocess.Popen(
        [medgate_cmd(), "iqa", "worker", "--ready-file", str(ready)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    app = make_celery(MedgateSettings(home=home))
    try:
        wait_for(ready.exists, 90, "medgate iqa worker to consume")
        for step in (StepName.iqa, StepName.segmentation):
            request = StepRequest(
                job_id=f"job-{step.value}",
                step=step,
                run=1,
                dispatch=1,
                study=StudyRef(study_instance_uid="1.2.3"),
                output_prefix="file:///tmp/x",
            )
            app.send_task(step.task, args=[request.model_dump(mode="json")], queue=step.queue)
        events: list[StepEvent] = []

        def final_event() -> bool:
            with app.connection_for_read() as conn, conn.SimpleQueue("gateway") as queue:
                while True:
                    try:
                        message = queue.get(timeout=0.2)
                    except queue.Empty:
                        break
                    events.append(StepEvent.model_validate(message.decode()[0][0]))
                    message.ack()
            return any(e.kind.final for e in events)

        wait_for(final_event, 60, "the iqa step's answer")
        assert {(e.job_id, e.kind) for e in events} == {
            ("job-iqa", StepEventKind.started),
            ("job-iqa", StepEventKind.failed),
        }
        # a study without series: the gate refuses it rather than let it through unseen
        assert [e.error_code for e in events if e.kind.final] == ["not_assessable"]
        assert all(e.at <= dt.datetime.now(dt.UTC) for e in events)
        with app.connection_for_read() as conn, conn.SimpleQueue("segmentation") as queue:
            assert queue.qsize() == 1  # still waiting for the segmentation service's own worker
    finally:
        # SIGTERM to the main process only (a warm shutdown, as WorkerProcess.stop does): a pool
        # process that is signalled directly right after an ONNX Runtime task can leave the main
        # process waiting forever.
        os.kill(worker.pid, signal.SIGTERM)
        worker.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        app.close()
