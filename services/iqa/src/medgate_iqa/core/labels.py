"""The label space of the quality model: the order of attributes, severities and verdicts
in its output tensors. The ONNX file's metadata repeats it and the loader checks both agree."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from medgate_common.schemas.quality import QualityAttribute, Severity, Verdict

# What the network predicts, in its output order. Lossy compression is the one attribute it
# does not: the header states it (core.compression).
ATTRIBUTES: tuple[QualityAttribute, ...] = tuple(a for a in QualityAttribute if a is not QualityAttribute.compression)
SEVERITIES: tuple[Severity, ...] = (Severity.none, Severity.mild, Severity.severe)
VERDICTS: tuple[Verdict, ...] = (Verdict.good, Verdict.usable, Verdict.reject)
MODALITY_INDEX = {"CT": 0, "MR": 1}


def verdict_of(levels: Iterable[Severity]) -> Verdict:
    """The rule every verdict follows (MedQ's): no finding is good, any mild finding makes
    an image usable, any severe one rejects it."""
    found = set(levels)
    if Severity.severe in found:
        return Verdict.reject
    if Severity.mild in found:
        return Verdict.usable
    return Verdict.good


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


def applicable_matrix() -> npt.NDArray[np.bool_]:
    """(modalities, attributes): True where the attribute is reported for the modality, in
    MODALITY_INDEX and ATTRIBUTES order (training masks its loss with it)."""
    out = np.zeros((len(MODALITY_INDEX), len(ATTRIBUTES)), dtype=bool)
    for modality, index in MODALITY_INDEX.items():
        for attribute in APPLICABLE[modality]:
            out[index, ATTRIBUTES.index(attribute)] = True
    return out
