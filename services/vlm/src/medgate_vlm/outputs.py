"""Writing one series' draft report to storage: the SR and the key images under one folder, and
the :class:`ReasoningResult` that names them. The API and the workflow step write the same
files; only the folder and the objects' UIDs differ (the step derives them from its request,
so a redelivered task rewrites the same objects)."""

from __future__ import annotations

from dataclasses import dataclass

from medgate_common.schemas.reasoning import ReasoningResult
from medgate_common.schemas.workflow import Artifact
from medgate_common.storage import LocalStorage
from medgate_vlm.core.evidence import Section
from medgate_vlm.core.pipeline import Reasoner, Report
from medgate_vlm.core.report import as_wire, section_text

RESULT_NAME = "report.json"


@dataclass(frozen=True)
class Written:
    result: ReasoningResult
    artifacts: tuple[Artifact, ...]


def write_report(
    storage: LocalStorage, folder: str, study_uid: str, series_uid: str, report: Report, reasoner: Reasoner
) -> Written:
    """Store the SR (``report.dcm``), the key images and ``report.json`` under ``folder``."""
    uris: dict[str, str] = {}
    artifacts: list[Artifact] = []
    for file in report.outputs.files:
        uris[file.name] = storage.put_bytes(f"{folder}/{file.name}", file.data)
        artifacts.append(Artifact(uri=uris[file.name], media_type=file.media_type, description=file.description))
    sr_name = report.outputs.sr.name
    result = ReasoningResult(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        triage=report.triage.score if report.triage is not None else None,
        triage_note="" if report.triage is not None else reasoner.triage_note,
        answers=report.answers,
        findings_text=section_text(report.statements, Section.FINDINGS),
        impression_text=section_text(report.statements, Section.IMPRESSION),
        statements=as_wire(report.statements),
        sr_uri=uris[sr_name],
        key_image_uris=tuple(uris[f.name] for f in report.outputs.key_images),
        model=reasoner.vqa_info,
    )
    storage.put_bytes(f"{folder}/{RESULT_NAME}", result.model_dump_json(indent=2).encode())
    return Written(result, tuple(artifacts))
