"""The Celery plumbing of every worker: configuration, and what the step wrapper reports.

The wrapper runs through Celery's ``apply`` (the task body in this process) and publishes
its events through a real kombu transport: the embedded broker, a SQLite file in tmp_path.
The worker-process behaviour (redelivery, kills) is tested in tests/e2e.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from shared_fixtures import drain_step_events

from medgate_common.errors import InvalidDicomError, MedgateError, TransientError
from medgate_common.schemas import StudyRef
from medgate_common.schemas.workflow import (
    StepEventKind,
    StepName,
    StepRequest,
    StepResult,
)
from medgate_common.settings import MedgateSettings
from medgate_common.tasking import StepSpec, make_celery, step_task
from medgate_common.tasking.app import broker_options
from medgate_common.tasking.step import is_transient
from medgate_common.tasking.worker import installed_task_modules


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Celery]:
    celery = make_celery(MedgateSettings(home=tmp_path / "home"))
    yield celery
    celery.close()


def request_payload() -> dict[str, Any]:
    return StepRequest(
        job_id="job-1",
        step=StepName.segmentation,
        run=1,
        dispatch=1,
        study=StudyRef(study_instance_uid="1.2.3"),
        output_prefix="file:///tmp/out",
    ).model_dump(mode="json")


def test_the_app_is_configured_not_to_lose_work(app: Celery) -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.task_ignore_result
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_routes["seg.*"] == {"queue": "segmentation"}
    assert app.conf.broker_url.startswith("mgsqla+sqlite:///")
    assert (Path(app.conf.broker_url.split("sqlite:///", 1)[1])).parent.is_dir()


def test_redis_options_look_for_lost_messages_well_within_the_visibility_timeout() -> None:
    options = broker_options("redis://127.0.0.1:6379/0", 3600)
    assert options["visibility_timeout"] == 3600 and options["unacked_restore_interval"] == 10
    assert broker_options("redis://h/0", 6)["unacked_restore_interval"] == 1.5
    assert broker_options("mgsqla+sqlite:////x.db", 3600) == {"connect_args": {"timeout": 30}}


def test_backoff_grows_and_is_capped_and_only_transient_errors_retry() -> None:
    spec = StepSpec(StepName.iqa, backoff_s=2, backoff_max_s=10)
    assert [spec.backoff(n) for n in range(5)] == [2, 4, 8, 10, 10]
    assert is_transient(TransientError("busy")) and is_transient(ConnectionError()) and is_transient(TimeoutError())
    assert not is_transient(InvalidDicomError("bad")) and not is_transient(ValueError())


def test_a_step_reports_started_then_done_with_its_result(app: Celery) -> None:
    seen: list[StepRequest] = []

    def segment(request: StepRequest) -> StepResult:
        seen.append(request)
        return StepResult(result={"lesions": 2})

    task = step_task(app, StepSpec(StepName.segmentation))(segment)
    assert task.name == "seg.segment" and task.acks_late and task.reject_on_worker_lost
    task.apply(args=[request_payload()])
    started, done = drain_step_events(app)
    assert [started.kind, done.kind] == [StepEventKind.started, StepEventKind.done]
    assert done.result == {"lesions": 2} and done.duration_s is not None and done.worker
    assert done.job_id == "job-1" and done.run == 1 and done.at <= dt.datetime.now(dt.UTC)
    assert seen[0].study.study_instance_uid == "1.2.3"


def test_a_declared_no_op_reports_not_installed(app: Celery) -> None:
    step_task(app, StepSpec(StepName.segmentation))(lambda r: StepResult.not_installed("no model here")).apply(
        args=[request_payload()]
    )
    _, final = drain_step_events(app)
    assert final.kind is StepEventKind.not_installed and final.error_detail == "no model here"
    assert final.result is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidDicomError("no pixel data"), "invalid_dicom"),
        (RuntimeError("bug"), "step_error"),
        (TransientError("still busy"), "transient"),  # out of retries
    ],
)
def test_errors_are_reported_as_failed_with_a_stable_code(app: Celery, error: Exception, code: str) -> None:
    def broken(request: StepRequest) -> StepResult:
        raise error

    step_task(app, StepSpec(StepName.segmentation, max_retries=0))(broken).apply(args=[request_payload()])
    _, final = drain_step_events(app)
    assert final.kind is StepEventKind.failed and final.error_code == code
    if isinstance(error, MedgateError):
        assert final.error_detail == error.message


def test_a_transient_error_is_retried_and_then_succeeds(app: Celery) -> None:
    calls: list[int] = []

    def flaky(request: StepRequest) -> StepResult:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("peer timed out")
        return StepResult(result={"ok": True})

    task = step_task(app, StepSpec(StepName.segmentation, max_retries=2, backoff_s=0))(flaky)
    task.apply(args=[request_payload()])
    events = drain_step_events(app)
    assert len(calls) == 2
    assert [(e.kind, e.attempt) for e in events] == [
        (StepEventKind.started, 1),
        (StepEventKind.started, 2),
        (StepEventKind.done, 2),
    ]


def test_a_later_registration_replaces_the_step(app: Celery) -> None:
    step_task(app, StepSpec(StepName.iqa))(lambda r: StepResult.not_installed("first"))
    step_task(app, StepSpec(StepName.iqa))(lambda r: StepResult(result={"second": True}))
    app.tasks["iqa.assess"].apply(args=[{**request_payload(), "step": "iqa"}])
    assert drain_step_events(app)[-1].result == {"second": True}


def test_every_package_brings_its_tasks_through_the_entry_point_group() -> None:
    assert installed_task_modules() == {
        "gateway": "medgate_gateway.workflow.tasks",
        "iqa": "medgate_iqa.tasks",
        "seg": "medgate_seg.tasks",
        "vlm": "medgate_vlm.tasks",
    }


def test_the_embedded_broker_deletes_what_it_hands_out(app: Celery) -> None:
    """The stock SQLAlchemy transport keeps every consumed row forever; ours does not."""
    import sqlite3

    for n in range(3):
        app.send_task("iqa.assess", args=[{"n": n}], queue="iqa")
    with app.connection_for_read() as conn, conn.SimpleQueue("iqa") as queue:
        got = [queue.get(timeout=2) for _ in range(2)]
        for message in got:
            message.ack()
    assert [m.decode()[0][0]["n"] for m in got] == [0, 1]  # in order
    path = app.conf.broker_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT visible, count(*) FROM kombu_message GROUP BY visible").fetchall()
    assert rows == [(1, 1)]  # only the one nobody took


def test_a_step_that_may_outlive_the_visibility_timeout_is_reported(tmp_path: Path) -> None:
    from medgate_common.tasking.worker import check_time_limits

    settings = MedgateSettings(home=tmp_path, broker_url="redis://127.0.0.1:1/0", broker_visibility_timeout=600)
    celery = make_celery(settings)
    step_task(celery, StepSpec(StepName.iqa, time_limit=900, soft_time_limit=890))(lambda r: StepResult())
    step_task(celery, StepSpec(StepName.segmentation, time_limit=300, soft_time_limit=290))(lambda r: StepResult())
    assert check_time_limits(celery) == ["iqa.assess"]
    celery.close()
