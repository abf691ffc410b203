"""The label space of the quality model: the order of attributes, severities and verdicts
in its output tensors. The ONNX file's metadata repeats it and the loader checks both agree."""

from __future__ import annotations

from medgate_common.schemas.quality import QualityAttribute, Severity, Verdict

ATTRIBUTES: tuple[QualityAttribute, ...] = tuple(QualityAttribute)
SEVERITIES: tuple[Severity, ...] = (Severity.none, Severity.mild, Severity.severe)
VERDICTS: tuple[Verdict, ...] = (Verdict.good, Verdict.usable, Verdict.reject)
MODALITY_INDEX = {"CT": 0, "MR": 1}

# Which attributes make sense per modality; the others are never reported for it.
APPLICABLE: dict[str, frozenset[QualityAttribute]] = {
    "CT": frozenset(
        {
            QualityAttribute.noise,
            QualityAttribute.streak,
            QualityAttribute.limited_angle,
            QualityAttribute.metal,
            QualityAttribute.ring,
            QualityAttribute.motion,
            QualityAttribute.blur,
            QualityAttribute.exposure,
            QualityAttribute.contrast,
        }
    ),
    "MR": frozenset(
        {
            QualityAttribute.motion,
            QualityAttribute.ghosting,
            QualityAttribute.undersampling,
            QualityAttribute.bias_field,
            QualityAttribute.spike,
            QualityAttribute.gibbs,
            QualityAttribute.noise,
            QualityAttribute.susceptibility,
            QualityAttribute.blur,
            QualityAttribute.exposure,
            QualityAttribute.contrast,
        }
    ),
}
