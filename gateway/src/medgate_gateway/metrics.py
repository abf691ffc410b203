"""Prometheus metrics of the gateway, exposed on ``/metrics``.

Module-level collectors on the default registry, as prometheus_client intends: every
ingest path (DIMSE, STOW) and every process in one Python interpreter counts into them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INSTANCES_RECEIVED = Counter(
    "medgate_instances_received_total",
    "DICOM instances stored and indexed (duplicates excluded)",
    ["transport"],
)
INSTANCES_DUPLICATE = Counter(
    "medgate_instances_duplicate_total",
    "Instances received again with identical content (accepted, not stored twice)",
    ["transport"],
)
INSTANCES_REJECTED = Counter(
    "medgate_instances_rejected_total",
    "Instances refused, by error code",
    ["transport", "code"],
)
BYTES_RECEIVED = Counter("medgate_received_bytes_total", "Bytes of DICOM stored", ["transport"])
STUDIES_READY = Counter("medgate_studies_ready_total", "Studies handed to the workflow", ["reason"])
STUDY_LATENCY = Histogram(
    "medgate_study_ready_latency_seconds",
    "From the first instance of a study to the study being ready",
    buckets=(1, 5, 15, 30, 60, 90, 120, 300, 600, 1800, 3600),
)
INGEST_SECONDS = Histogram(
    "medgate_ingest_seconds",
    "Time to validate, store and index one instance",
    ["transport"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
JOBS_CREATED = Counter("medgate_jobs_created_total", "Workflow jobs created for ready studies")
JOBS_FINISHED = Counter("medgate_jobs_finished_total", "Jobs that reached a final state", ["state"])
STEP_EVENTS = Counter("medgate_step_events_total", "Step events applied, by step and kind", ["step", "kind"])
STEP_DUPLICATES = Counter(
    "medgate_step_duplicate_events_total",
    "Final step events ignored because the step had already ended (redelivered tasks)",
    ["step"],
)
STEP_REDISPATCHED = Counter("medgate_step_redispatched_total", "Steps the watchdog sent again, by reason", ["reason"])
JOB_SECONDS = Histogram(
    "medgate_job_seconds",
    "From job creation to its final state",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
