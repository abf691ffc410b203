"""The assessor called for uploaded series (in a worker thread), with the metrics counted and
every refusal explained per series."""

from __future__ import annotations

from medgate_common.api.uploads import Series
from medgate_common.schemas.quality import NotAssessable, StudyQualityReport
from medgate_iqa import metrics
from medgate_iqa.core.assess import Assessment, QualityAssessor
from medgate_iqa.core.series import NotAssessableError, read_series


def _modality(series: Series) -> str:
    return str(series.datasets[0].get("Modality", "") or "") if series.datasets else ""


def explain(series: Series, exc: NotAssessableError | None = None) -> NotAssessable:
    """Why ``series`` cannot be judged: from ``exc`` when given, else by reading it again
    (which raises the same refusal the assessor met, without running the model)."""
    if exc is None:
        try:
            read_series(series.datasets)
        except NotAssessableError as found:
            exc = found
    code = str(exc.details.get("reason", exc.code)) if exc is not None else "not_assessable"
    reason = exc.message if exc is not None else "the series could not be assessed"
    return NotAssessable(
        series_instance_uid=series.series_instance_uid, modality=_modality(series), code=code, reason=reason
    )


def assess_study(assessor: QualityAssessor, series: list[Series]) -> StudyQualityReport:
    study_uid = series[0].study_instance_uid
    try:
        report = assessor.assess_study(study_uid, [(s.series_instance_uid, s.datasets) for s in series])
    except NotAssessableError as exc:
        skipped = [explain(s) for s in series]
        metrics.count_not_assessable(skipped)
        details = {**exc.details, "series": [s.model_dump(mode="json") for s in skipped]}
        raise NotAssessableError(exc.message, **details) from exc
    metrics.count_reports(report.series)
    metrics.count_not_assessable(report.not_assessable)
    return report


def assess_series(assessor: QualityAssessor, series: Series, side: str | None = None) -> Assessment:
    """One series; a refusal names the series (and, when comparing, which image it was)."""
    try:
        assessment = assessor.assess_series(series.datasets)
    except NotAssessableError as exc:
        item = explain(series, exc)
        metrics.count_not_assessable([item])
        where = {"side": side} if side else {}
        prefix = f"image {side.upper()}: " if side else ""
        raise NotAssessableError(
            prefix + exc.message, **{**exc.details, **where, "series": [item.model_dump(mode="json")]}
        ) from exc
    metrics.count_reports([assessment.report])
    return assessment
