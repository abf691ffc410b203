"""Liveness, readiness and Prometheus metrics (no patient data, no authentication)."""

from __future__ import annotations

from medgate_common.api.operations import operations_router
from medgate_vlm.api.deps import model_info

router = operations_router(model_info, "grounded VQA model")
