"""Slices -> series report -> study report: what the gate decides and why.

Per attribute, the series probability is the mean over the worst third of the assessed
slices (a focal artifact on three slices of twelve must not be averaged away; one odd
slice must not reject a series). The verdict follows the findings by the rule a
radiographer would apply: any severe finding rejects, any mild one makes it usable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from pydicom.dataset import Dataset

from medgate_common.dicom.io import Source
from medgate_common.errors import InvalidDicomError
from medgate_common.schemas.quality import (
    NotAssessable,
    QualityAttribute,
    QualityFinding,
    QualityReport,
    QualityStatistics,
    Severity,
    StudyQualityReport,
    Verdict,
)
from medgate_iqa.core.compression import LossyCompression
from medgate_iqa.core.labels import APPLICABLE, ATTRIBUTES, SEVERITIES, VERDICTS, verdict_of
from medgate_iqa.core.language import describe
from medgate_iqa.core.lexicon import TERMS
from medgate_iqa.core.model import QualityModel, SlicePrediction
from medgate_iqa.core.policy import GatePolicy
from medgate_iqa.core.series import NotAssessableError, read_series
from medgate_iqa.core.stats import SliceStatistics, measure, median_statistics
from medgate_iqa.core.views import quadrant


@dataclass(frozen=True)
class Assessment:
    """A report plus the probabilities behind it (perception answers read these)."""

    report: QualityReport
    present: dict[QualityAttribute, float]  # p(mild or severe), every applicable attribute
    severe: dict[QualityAttribute, float]
    verdict_probability: npt.NDArray[np.float32]  # the network's own verdict head, for reference

    def severity(self, attribute: QualityAttribute) -> Severity:
        for f in self.report.findings:
            if f.attribute is attribute:
                return f.severity
        return Severity.none

    @property
    def badness(self) -> float:
        """A scalar for ranking two images: verdict first, then how sure and how much."""
        return VERDICTS.index(self.report.verdict) + 0.5 * sum(self.severe.values()) + 0.1 * sum(self.present.values())


def verdict_for(findings: Iterable[QualityFinding]) -> Verdict:
    return verdict_of(f.severity for f in findings)


def _metal_location(slices: Sequence[npt.NDArray[np.float32]], weights: Sequence[float]) -> str | None:
    worst = slices[int(np.argmax(weights))]
    dense = np.argwhere(worst > 2500.0)
    if dense.size == 0:
        return None
    cy, cx = dense.mean(axis=0)
    return f"{quadrant(cy / worst.shape[0], cx / worst.shape[1])} of the image (dense implant)"


class QualityAssessor:
    def __init__(self, model: QualityModel, policy: GatePolicy | None = None) -> None:
        self.model = model
        self.policy = policy or GatePolicy()

    def assess_slices(
        self,
        slices: Sequence[npt.NDArray[np.float32]],
        modality: str,
        series_instance_uid: str = "",
        compression: LossyCompression | None = None,
    ) -> Assessment:
        """``compression`` is what the headers say (core.compression); pixels alone cannot
        tell a lossy image from its original."""
        if not slices:
            raise NotAssessableError("no slices to assess", reason="empty")
        predictions = self.model.predict(list(slices), modality)
        stats = median_statistics([measure(s, modality) for s in slices])
        return self._combine(predictions, stats, slices, modality, series_instance_uid, compression)

    def _combine(
        self,
        predictions: list[SlicePrediction],
        stats: SliceStatistics,
        slices: Sequence[npt.NDArray[np.float32]],
        modality: str,
        series_uid: str,
        compression: LossyCompression | None = None,
    ) -> Assessment:
        t = self.policy.for_modality(modality)
        sev = np.stack([p.severity for p in predictions])  # (slices, attributes, 3)
        k = max(1, round(len(predictions) * t.top_fraction))
        present_all = sev[:, :, 1] + sev[:, :, 2]
        present = np.sort(present_all, axis=0)[-k:].mean(axis=0)
        severe = np.sort(sev[:, :, 2], axis=0)[-k:].mean(axis=0)
        findings: list[QualityFinding] = []
        p_present: dict[QualityAttribute, float] = {}
        p_severe: dict[QualityAttribute, float] = {}
        for i, attribute in enumerate(ATTRIBUTES):
            if attribute not in APPLICABLE[modality]:
                continue
            p, ps = float(present[i]), float(severe[i])
            level = Severity.severe if ps >= t.severe else Severity.mild if p >= t.presence else Severity.none
            level = max(level, self._measured(attribute, stats, modality), key=SEVERITIES.index)
            if level is not Severity.none:
                p = max(p, 0.5)
            p_present[attribute], p_severe[attribute] = round(p, 4), round(ps, 4)
            if level is Severity.none:
                continue
            location = TERMS[attribute].pattern
            if attribute is QualityAttribute.metal:
                location = _metal_location(slices, present_all[:, i].tolist()) or location
            findings.append(
                QualityFinding(attribute=attribute, severity=level, probability=round(p, 4), location=location)
            )
        if compression is not None:
            limit = t.lossy_ratio_severe
            severe_ratio = (
                compression.ratio > limit if compression.ratio is not None else t.lossy_unknown_ratio == "severe"
            )
            p_present[QualityAttribute.compression] = 1.0
            p_severe[QualityAttribute.compression] = 1.0 if severe_ratio else 0.0
            findings.append(
                QualityFinding(
                    attribute=QualityAttribute.compression,
                    severity=Severity.severe if severe_ratio else Severity.mild,
                    probability=1.0,
                    location=f"{compression.describe()}; limit {limit:g}:1 for {modality}",
                )
            )
        findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), -f.probability))
        statistics = QualityStatistics(**vars(stats))
        verdict = verdict_for(findings)
        draft = QualityReport(
            series_instance_uid=series_uid or "0",
            modality=modality,
            findings=tuple(findings),
            statistics=statistics,
            verdict=verdict,
            reasoning="-",
            model=self.model.info,
        )
        report = QualityReport.model_validate(
            {**draft.model_dump(), "reasoning": describe(draft), "series_instance_uid": series_uid or "0"}
        )
        mean_verdict = np.stack([p.verdict for p in predictions]).mean(axis=0).astype(np.float32)
        return Assessment(report, p_present, p_severe, mean_verdict)

    def _measured(self, attribute: QualityAttribute, stats: SliceStatistics, modality: str) -> Severity:
        """Floors that measured statistics put under the network's call."""
        t = self.policy.for_modality(modality)
        if attribute is QualityAttribute.noise and stats.noise_sigma >= t.noise_severe:
            return Severity.severe
        if attribute is QualityAttribute.exposure:
            if stats.clipped_fraction >= t.clipped_severe:
                return Severity.severe
            if stats.clipped_fraction >= t.clipped_mild:
                return Severity.mild
        return Severity.none

    def assess_series(self, sources: Iterable[Source | Dataset]) -> Assessment:
        series = read_series(sources)
        return self.assess_slices(series.slices, series.modality, series.series_instance_uid, series.compression)

    def assess_study(
        self, study_instance_uid: str, series: Iterable[tuple[str, Iterable[Source | Dataset]]]
    ) -> StudyQualityReport:
        """Every series judged on its own; raises :class:`NotAssessableError` only when no
        series at all could be judged (the study must not pass the gate unseen)."""
        reports: list[QualityReport] = []
        skipped: list[NotAssessable] = []
        for uid, sources in series:
            try:
                reports.append(self.assess_series(sources).report)
            except NotAssessableError as exc:
                skipped.append(
                    NotAssessable(
                        series_instance_uid=uid,
                        modality=str(exc.details.get("modality", "")),
                        code=str(exc.details.get("reason", exc.code)),
                        reason=exc.message,
                    )
                )
        if not reports:
            why = "; ".join(f"{s.series_instance_uid}: {s.reason}" for s in skipped) or "the study has no series"
            raise NotAssessableError(
                f"no series of the study can be assessed ({why})",
                reason="no_assessable_series",
                series=[s.model_dump(mode="json") for s in skipped],
            )
        ranked = sorted(reports, key=lambda r: VERDICTS.index(r.verdict))
        verdict = ranked[-1].verdict if self.policy.study_rule == "worst" else ranked[0].verdict
        reasons = tuple(
            f"series {r.series_instance_uid} ({r.modality}): "
            + ", ".join(f"{f.severity.value} {TERMS[f.attribute].name}" for f in r.findings)
            for r in reports
            if r.verdict is not Verdict.good
        )
        try:
            return StudyQualityReport(
                study_instance_uid=study_instance_uid,
                verdict=verdict,
                series=tuple(reports),
                reasons=reasons,
                not_assessable=tuple(skipped),
            )
        except ValidationError as exc:  # e.g. a StudyInstanceUID that is not a UID
            raise InvalidDicomError(f"the study cannot be reported: {exc.errors()[0]['msg']}") from exc


__all__ = ["VERDICTS", "Assessment", "QualityAssessor", "verdict_for"]
