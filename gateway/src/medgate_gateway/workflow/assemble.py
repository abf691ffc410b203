"""``gateway.assemble``: the last step, which turns step outputs into the study's record.

Each finished step's JSON result becomes one ``results`` row (replaced, not duplicated, if
assembly runs again), and every DICOM object a step wrote (SEG, SR, key images) is indexed
into the study like any received instance, through the same validation, except that it does
not re-open the study for another job. Running it twice changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from medgate_common.schemas import StepStatus
from medgate_common.schemas.workflow import StepName, StepRequest, StepResult
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import JobStep, Result
from medgate_gateway.ingest.ingestor import Ingestor, Source

DICOM = "application/dicom"


def assemble(db: Database, ingestor: Ingestor, request: StepRequest) -> StepResult:
    with db.read() as session:
        steps = session.scalars(
            select(JobStep).where(
                JobStep.job_fk == request.job_id,
                JobStep.step != StepName.assemble.value,
                JobStep.status == StepStatus.done,
            )
        ).all()
    derived: list[dict[str, Any]] = []
    for step in steps:
        for artifact in step.artifacts:
            if artifact.get("media_type") != DICOM:
                continue
            data = ingestor.storage.get_bytes(str(artifact["uri"]))
            source = Source(transport="workflow", actor=f"medgate:{step.step}")
            stored = ingestor.ingest(data, source, reopen=False)
            derived.append(
                {
                    "step": step.step,
                    "sop_instance_uid": stored.instance.sop_instance_uid,
                    "series_instance_uid": stored.instance.series_uid,
                    "modality": stored.instance.modality,
                    "storage_uri": stored.storage_uri,
                }
            )
    with db.write() as session:
        for step in steps:
            model = step.model or {}
            first_uri = next((str(a["uri"]) for a in step.artifacts if "uri" in a), "")
            row = session.scalar(select(Result).where(Result.job_fk == request.job_id, Result.kind == step.step))
            if row is None:
                row = Result(job_fk=request.job_id, kind=step.step)
                session.add(row)
            row.payload = step.result or {}
            row.storage_uri = first_uri
            row.model_name = str(model.get("name", ""))[:64]
            row.model_version = str(model.get("version", ""))[:32]
    return StepResult(result={"results": [s.step for s in steps], "derived_instances": derived})
