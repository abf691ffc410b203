"""Prometheus metrics of the image-quality API, exposed on ``/metrics``.

Module-level collectors on the default registry, as prometheus_client intends: every app
built in one interpreter counts into the same series (tests compare before and after).
"""

from __future__ import annotations

from prometheus_client import Counter

from medgate_common.api.middleware import request_collectors
from medgate_common.schemas.quality import NotAssessable, QualityReport

REQUESTS, REQUEST_SECONDS = request_collectors("iqa")
VERDICTS = Counter(
    "medgate_iqa_verdicts_total",
    "Series the gate judged, by modality and verdict",
    ["modality", "verdict"],
)
NOT_ASSESSABLE = Counter(
    "medgate_iqa_not_assessable_total",
    "Series the gate could not judge, by reason code",
    ["reason"],
)


def count_reports(reports: tuple[QualityReport, ...] | list[QualityReport]) -> None:
    for report in reports:
        VERDICTS.labels(report.modality, report.verdict.value).inc()


def count_not_assessable(skipped: tuple[NotAssessable, ...] | list[NotAssessable]) -> None:
    for item in skipped:
        NOT_ASSESSABLE.labels(item.code).inc()
