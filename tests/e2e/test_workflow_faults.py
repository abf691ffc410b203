"""The workflow with real processes: no job lost or doubled when parts of it die.

Distributed mode as deployed: ``medgate gateway serve`` (sweeper, watchdog, API), a
gateway worker and one worker per model queue, a private redis-server (so that it can be
restarted) and a fresh PostgreSQL database. The model steps are the benchmark's
calibrated workload (``medgate_gateway.bench.workload``), which can be slow, fail or reject
on demand, because the real IQA, segmentation and reasoning services are not built yet;
everything else is the production code path.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from workflow_support import PG_ADMIN, executions, ingest_study, jobs_for, wait_for, wait_terminal

from medgate_common.postgres import postgres_database
from medgate_common.schemas import JobStatus, StepStatus
from medgate_gateway.auth.users import create_api_key, create_user
from medgate_gateway.bench.orthanc import free_port
from medgate_gateway.bench.stack import DistributedStack, RedisServer
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Result
from medgate_gateway.settings import GatewaySettings

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@dataclass
class Env:
    stack: DistributedStack
    redis: RedisServer
    context: GatewayContext  # the test's own view of the database (no sweeper, no workflow)
    log: Path

    def submit(self, n: int = 1, description: str = "Axial 3mm") -> list[str]:
        return [ingest_study(self.context, description=description) for _ in range(n)]

    def results_per_job(self) -> dict[str, int]:
        with self.context.db.read() as session:
            rows = session.execute(select(Result.job_fk, func.count()).group_by(Result.job_fk)).all()
        return {job: int(count) for job, count in rows}

    def ran(self, step: str) -> list[dict[str, object]]:
        return [e for e in executions(self.log) if e["step"] == step]


def make_env(tmp_path: Path, database_url: str, redis: RedisServer, **workload: str) -> Env:
    settings = GatewaySettings(
        home=tmp_path / "home",
        database_url=database_url,
        broker_url=redis.url,
        broker_visibility_timeout=6,
        http_port=free_port(),
        stable_seconds=2.0,  # longer than any gap between two instances of one test study, even under load
        sweep_interval_seconds=0.2,
        watchdog_interval_seconds=0.5,
        token_secret="t" * 40,
    )
    log = tmp_path / "executions.jsonl"
    extra = {"MEDGATE_WORKLOAD_LOG": str(log), "MEDGATE_WORKLOAD_SECONDS": "0.05", **workload}
    stack = DistributedStack(settings, extra_env=extra)
    stack.start()
    context = GatewayContext.build(settings.model_copy(update={"workflow": False}), run_migrations=False)
    return Env(stack, redis, context, log)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env_factory(tmp_path: Path, redis_server: RedisServer) -> Iterator[object]:
    made: list[Env] = []
    with postgres_database(PG_ADMIN) as url:

        def factory(**workload: str) -> Env:
            env = make_env(tmp_path, url, redis_server, **workload)
            made.append(env)
            return env

        yield factory
        for env in made:
            env.stack.stop()
            env.context.close()


def assert_each_step_once(env: Env, study_uids: list[str], status: JobStatus = JobStatus.review_ready) -> None:
    jobs = jobs_for(env.context, study_uids)
    assert len(jobs) == len(study_uids), "one job per study"
    assert {j.status for j in jobs} == {status}
    per_job = env.results_per_job()
    assert all(per_job[j.job_id] == 3 for j in jobs), per_job  # iqa, segmentation, reasoning: once each


def test_studies_flow_through_and_the_gate_stops_a_rejected_one(env_factory) -> None:  # type: ignore[no-untyped-def]
    env: Env = env_factory()
    good = env.submit(2)
    bad = env.submit(1, description="REJECT: motion")
    jobs = {j.study_instance_uid: j for j in wait_terminal(env.context, good + bad, 60)}
    assert {jobs[s].status for s in good} == {JobStatus.review_ready}
    rejected = jobs[bad[0]]
    assert rejected.status is JobStatus.quality_rejected and "REJECT" in rejected.error
    assert [s.status for s in rejected.steps] == [
        StepStatus.done,
        StepStatus.skipped,
        StepStatus.skipped,
        StepStatus.done,
    ]
    assert_each_step_once(env, good)
    assert len(env.ran("segmentation")) == 2 and len(env.ran("iqa")) == 3
    for job in jobs.values():
        for step in job.steps:
            if step.status is StepStatus.done:
                assert step.worker and step.duration_s is not None and step.dispatches == 1


def test_a_pool_process_killed_mid_task_is_redelivered_and_the_job_finishes_once(env_factory) -> None:  # type: ignore[no-untyped-def]
    env: Env = env_factory(MEDGATE_WORKLOAD_SECONDS_SEGMENTATION="3")
    [study] = env.submit(1)
    [first] = wait_for(lambda: env.ran("segmentation"), 30, "segmentation to start")
    os.kill(int(first["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    [job] = wait_terminal(env.context, [study], 60)
    assert job.status is JobStatus.review_ready
    runs = env.ran("segmentation")
    assert len(runs) == 2 and runs[1]["pid"] != first["pid"]
    [seg] = [s for s in job.steps if s.name == "segmentation"]
    assert seg.dispatches == 1  # the broker redelivered it (reject_on_worker_lost), not the watchdog
    assert_each_step_once(env, [study])


def test_a_whole_worker_killed_mid_task_is_redelivered_to_its_replacement(env_factory) -> None:  # type: ignore[no-untyped-def]
    env: Env = env_factory(MEDGATE_WORKLOAD_SECONDS_SEGMENTATION="2")
    [study] = env.submit(1)
    wait_for(lambda: env.ran("segmentation"), 30, "segmentation to start")
    worker = env.stack.workers["model-segmentation"]
    worker.kill()  # the worker and its pool, as if the host lost power
    worker.start()
    [job] = wait_terminal(env.context, [study], 90)
    assert job.status is JobStatus.review_ready
    assert len(env.ran("segmentation")) == 2
    assert_each_step_once(env, [study])


def test_a_redis_restart_with_jobs_queued_loses_none(env_factory) -> None:  # type: ignore[no-untyped-def]
    env: Env = env_factory()
    iqa_worker = env.stack.workers["model-iqa"]
    iqa_worker.stop()  # nobody consumes iqa: the jobs wait in Redis
    studies = env.submit(4)
    wait_for(lambda: env.redis.queued("iqa") == 4, 30, "four iqa messages in Redis")
    env.redis.restart()  # no persistence: every queued message is gone
    wait_for(lambda: env.redis.queued("iqa") == 4, 30, "the watchdog to send the steps again")
    time.sleep(1.5)  # three more watchdog ticks: they must not send them a third time
    assert env.redis.queued("iqa") == 4  # four again, not eight: the old ones were lost
    iqa_worker.start()
    jobs = wait_terminal(env.context, studies, 90)
    assert {j.status for j in jobs} == {JobStatus.review_ready}
    assert all(next(s for s in j.steps if s.name == "iqa").dispatches == 2 for j in jobs)
    assert_each_step_once(env, studies)


def test_jobs_in_flight_finish_after_the_gateway_restarts(env_factory) -> None:  # type: ignore[no-untyped-def]
    env: Env = env_factory(MEDGATE_WORKLOAD_SECONDS="0.5")
    studies = env.submit(4)
    wait_for(lambda: len(jobs_for(env.context, studies)) == 4, 30, "the jobs to be created")
    wait_for(lambda: env.ran("segmentation"), 30, "a model step to run")
    env.stack.stop_gateway(kill=True)
    env.stack.workers["gateway"].kill()
    more = env.submit(2)  # arrives while the gateway is down
    env.stack.workers["gateway"].start()
    env.stack.start_gateway()
    jobs = wait_terminal(env.context, studies + more, 120)
    assert {j.status for j in jobs} == {JobStatus.review_ready}
    assert_each_step_once(env, studies + more)


def test_a_permanent_error_fails_the_job_and_a_retry_over_http_finishes_it(env_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "fail-segmentation"
    flag.touch()
    env: Env = env_factory(MEDGATE_WORKLOAD_FAIL_FLAG=str(flag), MEDGATE_WORKLOAD_FAIL_STEP="segmentation")
    [study] = env.submit(1)
    [job] = wait_terminal(env.context, [study], 60)
    assert job.status is JobStatus.failed and job.error_code == "workload_failure"
    assert len(env.ran("segmentation")) == 1  # a permanent error is not retried
    create_user(env.context.db, "tech", "technologist", "a-long-password-1")
    key = create_api_key(env.context.db, "tech", name="test")
    flag.unlink()
    resp = httpx.post(
        f"{env.stack.base_url}/api/v1/jobs/{job.job_id}/retry", headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 202, resp.text
    wait_for(
        lambda: jobs_for(env.context, [study])[0].status is JobStatus.review_ready, 60, "the retried job to finish"
    )
    [done] = jobs_for(env.context, [study])
    assert done.run == 2
    assert len(env.ran("iqa")) == 1 and len(env.ran("segmentation")) == 2  # only what failed ran again
    assert_each_step_once(env, [study])


def test_a_transient_error_is_retried_with_backoff(env_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "flaky-reasoning"
    flag.touch()
    env: Env = env_factory(
        MEDGATE_WORKLOAD_FAIL_FLAG=str(flag),
        MEDGATE_WORKLOAD_FAIL_STEP="reasoning",
        MEDGATE_WORKLOAD_FAIL_MODE="transient",
    )
    [study] = env.submit(1)
    wait_for(lambda: env.ran("reasoning"), 30, "the first attempt")
    flag.unlink()
    [job] = wait_terminal(env.context, [study], 60)
    assert job.status is JobStatus.review_ready
    [reasoning] = [s for s in job.steps if s.name == "reasoning"]
    assert reasoning.attempts >= 2 and reasoning.dispatches == 1
    assert_each_step_once(env, [study])
