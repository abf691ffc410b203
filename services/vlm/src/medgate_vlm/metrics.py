"""Prometheus metrics of the reasoning API, exposed on ``/metrics``.

Module-level collectors on the default registry, as prometheus_client intends: every app
built in one interpreter counts into the same series (tests compare before and after).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from medgate_common.api.middleware import request_collectors

REQUESTS, REQUEST_SECONDS = request_collectors("vlm")
REPORTS = Counter(
    "medgate_vlm_reports_total", "Draft reports asked for, by outcome (drafted or the refusal's code)", ["outcome"]
)
ANSWERS = Counter(
    "medgate_vlm_answers_total",
    "Questions answered, by intent and whether the model could answer",
    ["intent", "answerable"],
)
TRIAGE = Counter("medgate_vlm_triage_total", "Triage scores made, by most likely class", ["label"])
REASON_SECONDS = Histogram(
    "medgate_vlm_reason_seconds",
    "Compute time of one draft report: triage, standard questions, SR and key images",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
