"""Settings of the segmentation service (environment prefix ``MEDGATE_SEG_``), built once
and passed in. The HTTP API and the workflow worker read the same ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import OptionalPath, ServiceSettings


class SegSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_SEG_", extra="ignore", frozen=True)

    service_name: str = "seg"
    weights: OptionalPath = Field(
        default=None,
        description="Folder holding lesion_seg.onnx and its card lesion_seg.json; empty: the weights shipped "
        "in the package",
    )
    batch: int = Field(default=4, ge=1, le=64, description="Sliding-window patches per model call")
    overlap: float = Field(default=0.5, ge=0.0, lt=1.0, description="Overlap of neighbouring sliding-window patches")
    group_mm: float = Field(
        default=15.0,
        ge=0.0,
        description="Fragments closer than this (surface to surface, mm) form one lesion; 0: every connected "
        "component is a lesion of its own",
    )
    overlays: int = Field(default=3, ge=0, le=32, description="Review PNGs per lesion-bearing series (key slices)")
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads; 0: one per core")
