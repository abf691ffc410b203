"""The gate's thresholds, per modality, and how series verdicts make a study verdict.

Defaults were set on the held-out synthetic set and the clean real slices (see
docs/results/iqa.md); a site overrides them with a JSON/YAML file through the service
settings (``MEDGATE_IQA_POLICY_FILE``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModalityThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    presence: float = Field(0.5, ge=0, le=1, description="p(mild or severe) at which an attribute is reported")
    severe: float = Field(0.5, ge=0, le=1, description="p(severe) at which it is called severe")
    top_fraction: float = Field(
        0.34, gt=0, le=1, description="Share of the worst slices a series-level probability averages over"
    )
    noise_severe: float = Field(
        description="Measured noise at which noise is severe whatever the network says (CT: HU; MR: % of signal)"
    )
    clipped_mild: float = Field(0.03, ge=0, le=1, description="Share of anatomy at a detector limit: mild exposure")
    clipped_severe: float = Field(0.15, ge=0, le=1, description="... and severe exposure")
    lossy_ratio_severe: float = Field(
        ge=1,
        description="Lossy compression ratio above which compression is severe (at or below: mild); "
        "1 rejects any lossy image whose ratio is known",
    )
    lossy_unknown_ratio: Literal["mild", "severe"] = Field(
        "mild", description="How a lossy image with no recorded or measurable ratio is graded"
    )


class GatePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    modalities: dict[str, ModalityThresholds] = Field(
        default_factory=lambda: {
            # lossy limits: the Canadian Association of Radiologists' standard (neuro CT 12:1, MR 24:1)
            "CT": ModalityThresholds(noise_severe=60.0, lossy_ratio_severe=12.0),
            "MR": ModalityThresholds(noise_severe=9.0, lossy_ratio_severe=24.0),
        }
    )
    study_rule: Literal["worst", "best"] = Field(
        "worst",
        description="worst: one rejected series rejects the study (the safe default); "
        "best: the study passes if any series is usable",
    )

    @model_validator(mode="after")
    def _every_modality_has_thresholds(self) -> GatePolicy:
        missing = sorted({"CT", "MR"} - set(self.modalities))
        if missing:
            raise ValueError(f"thresholds missing for modality {', '.join(missing)}")
        return self

    def for_modality(self, modality: str) -> ModalityThresholds:
        return self.modalities[modality]
