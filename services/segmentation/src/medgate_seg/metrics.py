"""Prometheus metrics of the segmentation API, exposed on ``/metrics``.

Module-level collectors on the default registry, as prometheus_client intends: every app
built in one interpreter counts into the same series (tests compare before and after).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from medgate_common.api.middleware import request_collectors

REQUESTS, REQUEST_SECONDS = request_collectors("seg")
SERIES = Counter(
    "medgate_seg_series_total",
    "Series answered, by outcome (lesions, no_lesion) or the refusal's code",
    ["outcome"],
)
LESIONS = Counter("medgate_seg_lesions_total", "Lesions found")
SEGMENT_SECONDS = Histogram(
    "medgate_seg_segment_seconds",
    "Compute time of one series: checks, inference, post-processing, SEG and overlays",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
