"""Sending a step to its queue: the request a service sees, and the transport that sends it.

A request names the study, the series the routing rules gave to that step with the storage
URIs of their instances, and where the step may write its files. It never carries pixels.
"""

from __future__ import annotations

from typing import Protocol

from celery import Celery
from pydantic import JsonValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from medgate_common.schemas import SeriesRef, StepStatus, StudyRef
from medgate_common.schemas.workflow import UPSTREAM, StepName, StepRequest
from medgate_common.storage import LocalStorage
from medgate_common.tasking.app import PUBLISH_RETRY_POLICY
from medgate_gateway.db.orm import Instance, Job, JobStep, Series, Study


class Dispatcher(Protocol):
    def send(self, request: StepRequest) -> None:
        """Put ``request`` on its step's queue, or raise if the broker cannot take it."""
        ...


class CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, request: StepRequest) -> None:
        self.app.send_task(
            request.step.task,
            args=[request.model_dump(mode="json")],
            queue=request.step.queue,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )


#: Steps whose request carries the results of earlier steps: reasoning reports on the quality
#: gate's verdict and cites the lesions (and the SEG) of segmentation.
HANDED_OVER: dict[StepName, tuple[StepName, ...]] = {StepName.reasoning: (StepName.iqa, StepName.segmentation)}


def upstream_params(job: Job, step: JobStep) -> dict[str, JsonValue]:
    """``params`` of ``step``'s request: the JSON results of the steps it is handed (only those
    that ended ``done`` with a result; a skipped or not-installed step hands nothing)."""
    wanted = HANDED_OVER.get(StepName(step.step), ())
    results: dict[str, JsonValue] = {
        s.step: s.result for s in job.steps if StepName(s.step) in wanted and s.status == StepStatus.done and s.result
    }
    return {UPSTREAM: results} if wanted else {}


def build_request(session: Session, job: Job, step: JobStep, storage: LocalStorage) -> StepRequest:
    """The request for ``step`` as it stands now (call inside the transaction that claims it)."""
    study = session.get(Study, job.study_fk)
    assert study is not None
    wanted = list(step.series)
    refs: list[SeriesRef] = []
    if wanted:
        rows = session.execute(
            select(Series, Instance.storage_uri)
            .join(Instance, Instance.series_fk == Series.id)
            .where(Series.study_fk == study.id, Series.series_uid.in_(wanted))
            .order_by(Series.id, Instance.instance_number, Instance.id)
        ).all()
        by_series: dict[str, tuple[Series, list[str]]] = {}
        for series, uri in rows:
            by_series.setdefault(series.series_uid, (series, []))[1].append(uri)
        for uid in wanted:
            if uid not in by_series:
                continue
            series, uris = by_series[uid]
            refs.append(
                SeriesRef(
                    series_instance_uid=series.series_uid,
                    modality=series.modality or "OT",
                    series_description=series.description,
                    body_part=series.body_part,
                    instance_count=len(uris),
                    instance_uris=tuple(uris),
                )
            )
    return StepRequest(
        job_id=job.id,
        step=StepName(step.step),
        run=job.run,
        dispatch=step.dispatches,
        study=StudyRef(
            study_instance_uid=study.study_uid,
            series=tuple(refs),
            calling_ae=study.last_calling_ae or None,
            patient_key=f"p{study.patient_fk}",
        ),
        # one folder per copy sent: a redelivered or re-sent copy never overwrites the files
        # of the copy whose result the gateway kept
        output_prefix=storage.uri_for(f"jobs/{job.id}/run{job.run}/{step.step}/d{step.dispatches}"),
        params=upstream_params(job, step),
    )
