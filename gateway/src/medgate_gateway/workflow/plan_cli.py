"""``medgate workflow plan``: how the routing rules would split a study, without running it.

A site that edits its rules wants to see the effect before the next study arrives, so the
plan is made by the same :func:`plan_study` the engine calls, from the gateway database or,
with ``--dicom``, straight from files on disk (no gateway, no database needed). Nothing is
queued and nothing is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from medgate_gateway.db.engine import Database
    from medgate_gateway.workflow.rules import RoutingRules, SeriesFacts, WorkflowPlan

log = logging.getLogger(__name__)

# Only what routing looks at: reading these skips the rest of every header.
_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "Modality", "BodyPartExamined", "SeriesDescription"]


def add_plan_command(app: typer.Typer) -> None:
    app.command("plan")(plan)


def plan(
    study_uid: str | None = typer.Argument(None, help="Study Instance UID (optional with --dicom)"),
    dicom: Path | None = typer.Option(
        None, "--dicom", exists=True, file_okay=False, help="Plan the DICOM files under this folder, not the database"
    ),
    rules_path: Path | None = typer.Option(
        None, "--rules", help="Routing rules YAML (default: MEDGATE_GW_ROUTING_RULES, else the packaged rules)"
    ),
    calling_ae: str | None = typer.Option(
        None, "--calling-ae", help="Route as if sent by this AE (default: the study's last calling AE)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON"),
) -> None:
    """Show which series of a study each workflow step would get (a dry run: nothing is queued)."""
    from medgate_common.errors import InputError
    from medgate_gateway.settings import GatewaySettings
    from medgate_gateway.workflow.rules import RoutingRules, plan_study

    settings = GatewaySettings()
    rules = RoutingRules.from_settings(rules_path or settings.routing_rules)
    if dicom is not None:
        _, series = read_dicom_series(dicom, study_uid)
        result = plan_study(rules, series, calling_ae or "")
    elif not study_uid:
        raise InputError("give a STUDY_UID, or --dicom DIR to plan files without the database")
    else:
        result = _plan_from_database(settings.resolved_database_url(), study_uid, rules, calling_ae)
    typer.echo(result.model_dump_json(indent=2) if as_json else result.summary())


def _plan_from_database(url: str, study_uid: str, rules: RoutingRules, calling_ae: str | None) -> WorkflowPlan:
    from medgate_common.errors import NotFoundError
    from medgate_gateway.db.engine import Database

    db = Database(url)
    try:
        # A dry run must not leave an empty SQLite file behind where no gateway ever ran.
        path = db.url.database if db.dialect == "sqlite" else None
        if path not in (None, "", ":memory:") and not Path(str(path)).exists():
            raise NotFoundError(f"no gateway database at {db.url.database}; run `medgate gateway migrate`")
        return plan_for_study(db, study_uid, rules, calling_ae)
    finally:
        db.dispose()


def plan_for_study(db: Database, study_uid: str, rules: RoutingRules, calling_ae: str | None = None) -> WorkflowPlan:
    """Plan a study as stored; ``calling_ae`` None means the AE that last sent to it.

    Series are taken in series-number order (unnumbered last, then by arrival), the order a
    reader sees them in a viewer.
    """
    from sqlalchemy import select

    from medgate_common.errors import NotFoundError
    from medgate_gateway.db.orm import Series, Study
    from medgate_gateway.workflow.rules import SeriesFacts, plan_study

    with db.read() as session:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).one_or_none()
        if study is None:
            raise NotFoundError("no such study in the gateway database")
        rows = session.scalars(select(Series).where(Series.study_fk == study.id)).all()
        ae = study.last_calling_ae if calling_ae is None else calling_ae
        ordered = sorted(rows, key=lambda s: (s.series_number is None, s.series_number or 0, s.id))
        facts = [
            SeriesFacts(
                series_uid=s.series_uid,
                modality=s.modality,
                body_part=s.body_part,
                description=s.description,
                num_instances=s.num_instances,
            )
            for s in ordered
        ]
    return plan_study(rules, facts, ae)


@dataclass
class _SeenSeries:
    first_seen: int
    number: int | None
    modality: str
    body_part: str
    description: str
    instances: int = 0


def read_dicom_series(folder: Path, study_uid: str | None = None) -> tuple[str, list[SeriesFacts]]:
    """The series of one study found under ``folder``, as routing sees them.

    Files pydicom cannot read as DICOM Part 10 (label maps, JSON, notes) are skipped, so a
    study folder can be planned as it lies. Without ``study_uid`` the folder must hold
    exactly one study.
    """
    import pydicom

    from medgate_common.errors import InputError, NotFoundError
    from medgate_gateway.workflow.rules import SeriesFacts

    studies: dict[str, dict[str, _SeenSeries]] = {}
    skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
            study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        except Exception:  # not DICOM, truncated or without UIDs: nothing routing can use
            skipped += 1
            continue
        seen = studies.setdefault(study, {})
        if series not in seen:
            seen[series] = _SeenSeries(
                first_seen=len(seen),
                number=_int_or_none(ds.get("SeriesNumber")),
                modality=str(ds.get("Modality") or ""),
                body_part=str(ds.get("BodyPartExamined") or ""),
                description=str(ds.get("SeriesDescription") or ""),
            )
        seen[series].instances += 1
    if skipped:
        log.debug("skipped %d files that are not readable DICOM", skipped)
    if study_uid is not None:
        if study_uid not in studies:
            raise NotFoundError(f"no such study among the DICOM files under {folder}")
        chosen = study_uid
    elif not studies:
        raise NotFoundError(f"no DICOM files under {folder}")
    elif len(studies) > 1:
        raise InputError(f"{folder} holds {len(studies)} studies; name one with STUDY_UID")
    else:
        chosen = next(iter(studies))
    found = studies[chosen]
    ordered = sorted(found, key=lambda uid: (found[uid].number is None, found[uid].number or 0, found[uid].first_seen))
    return chosen, [
        SeriesFacts(
            series_uid=uid,
            modality=found[uid].modality,
            body_part=found[uid].body_part,
            description=found[uid].description,
            num_instances=found[uid].instances,
        )
        for uid in ordered
    ]


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
