"""V2T-CoT rationales built from the VQA model's own outputs, and the check that they agree
with the answer.

A rationale has 2-5 sentences: the modality and plane the model's image heads predicted;
where its grounding map peaks (a coarse position on the image and the patient's side,
with the map's score; when no region passes 0.5, the side of its strongest response);
what was measured in the grounded region (area, intensity inside vs around); then
"Therefore, the answer is …". Nothing comes from ground truth.

:func:`check` parses a rationale back and tests it against the answer: the tags and the
concluding sentence, the stated modality/plane for those questions, a stated grounded
region for every positive presence/count answer (and none for a negative one), the stated
side for side questions, the stated area's size bin for size questions, and a lateral organ
(liver right, spleen left) on the stated side for location questions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

GROUND_THRESHOLD = 0.5
LATERAL_ORGANS = {"liver": "right", "spleen": "left"}
POSITIVE = {"presence": ("yes",), "count": ("1", "2", "3+")}


@dataclass(frozen=True)
class Region:
    """What the grounding map found on the input image (all measured, in input units)."""

    peak: float
    row_frac: float
    col_frac: float
    area_mm2: float
    parts: int
    inside: float
    around: float
    box: tuple[int, int, int, int] | None  # row0, col0, row1, col1 inclusive


def measure_region(
    heatmap: npt.NDArray[np.float32], image: npt.NDArray[np.floating], spacing_mm: tuple[float, float]
) -> Region:
    peak_at = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    peak = float(heatmap[peak_at])
    on = heatmap >= GROUND_THRESHOLD
    _labels, parts = ndimage.label(on)
    rows, cols = heatmap.shape
    if parts == 0:
        return Region(peak, peak_at[0] / rows, peak_at[1] / cols, 0.0, 0, float("nan"), float("nan"), None)
    ring = ndimage.binary_dilation(on, iterations=3) & ~on
    r, c = np.nonzero(on)
    return Region(
        peak=peak,
        row_frac=float(peak_at[0]) / rows,
        col_frac=float(peak_at[1]) / cols,
        area_mm2=float(on.sum()) * spacing_mm[0] * spacing_mm[1],
        parts=int(parts),
        inside=float(np.mean(image[on])),
        around=float(np.mean(image[ring])) if ring.any() else float("nan"),
        box=(int(r.min()), int(c.min()), int(r.max()), int(c.max())),
    )


def patient_side(region: Region) -> str:
    """Radiological convention: the image's left is the patient's right."""
    return "right" if region.col_frac < 0.5 else "left"


def _position(region: Region) -> tuple[str, str]:
    vertical = ("upper", "middle", "lower")[min(2, int(region.row_frac * 3))]
    horizontal = ("left", "central", "right")[min(2, int(region.col_frac * 3))]
    return f"{vertical} {horizontal}", patient_side(region)


def build(
    *,
    modality: str,
    plane: str,
    intent: str,
    answer: str,
    key_phrase: str,
    region: Region | None,
    units: str,
) -> str:
    """The rationale and answer in V2T-CoT form: ``<rationale>…</rationale><answer>…</answer>``."""
    sentences = [f"This is a {modality} image in the {plane} plane."]
    if region is not None:
        if region.parts == 0:
            sentences.append(
                f'The grounding map for "{key_phrase}" finds no region above {GROUND_THRESHOLD} '
                f"(peak {region.peak:.2f}, grounded area 0 mm²); its strongest response is on the "
                f"patient's {patient_side(region)}."
            )
        else:
            where, side = _position(region)
            sentences.append(
                f'The grounding map for "{key_phrase}" peaks in the {where} part of the image, '
                f"on the patient's {side} (score {region.peak:.2f})."
            )
            contrast = "lower" if region.inside < region.around else "higher"
            sentences.append(
                f"The grounded region covers about {region.area_mm2:.0f} mm² in {region.parts} part(s), "
                f"mean {region.inside:.0f} {units} against {region.around:.0f} {units} around it ({contrast})."
            )
    sentences.append(f"Therefore, the answer is {answer}.")
    return f"<rationale>{' '.join(sentences)}</rationale><answer>{answer}</answer>"


_FORMAT = re.compile(r"^<rationale>(?P<body>.+)</rationale><answer>(?P<answer>[^<]+)</answer>$", re.S)
_MODALITY = re.compile(r"This is an? (?P<modality>\S+) image in the (?P<plane>\S+) plane\.")
_SIDE = re.compile(r"on the patient's (?P<side>left|right)")
_GROUNDED = re.compile(r"peaks in the [a-z]+ [a-z]+ part of the image")
_AREA = re.compile(r"(?:covers about|grounded area) (?P<area>[0-9.]+) mm²")
_CONCLUSION = re.compile(r"Therefore, the answer is (?P<answer>.+)\.$")


def check(text: str, intent: str, answer: str, size_edges_mm2: Sequence[float], size_bins: Sequence[str]) -> list[str]:
    """The ways ``text`` disagrees with ``answer`` (empty when consistent)."""
    m = _FORMAT.match(text)
    if m is None:
        return ["not in <rationale>…</rationale><answer>…</answer> form"]
    body, tagged = m["body"], m["answer"].strip()
    problems = []
    sentences = [s for s in re.split(r"(?<=\.)\s+(?=[A-Z])", body) if s]
    if not 2 <= len(sentences) <= 5:
        problems.append(f"{len(sentences)} sentences (2-5 expected)")
    conclusion = _CONCLUSION.search(sentences[-1]) if sentences else None
    if conclusion is None or conclusion["answer"] != tagged or tagged != answer:
        problems.append("the concluding sentence, the answer tag and the answer differ")
    head = _MODALITY.search(body)
    if intent == "modality" and (head is None or head["modality"] != answer):
        problems.append("the stated modality is not the answer")
    if intent == "plane" and (head is None or head["plane"] != answer):
        problems.append("the stated plane is not the answer")
    side = _SIDE.search(body)
    if intent in POSITIVE and (answer in POSITIVE[intent]) != (_GROUNDED.search(body) is not None):
        problems.append("a finding is answered but not grounded, or grounded but answered absent")
    if intent == "side" and (side is None or side["side"] != answer):
        problems.append("the stated side is not the answer")
    if intent == "location" and answer in LATERAL_ORGANS and (side is None or side["side"] != LATERAL_ORGANS[answer]):
        problems.append(f"the {answer} lies on the patient's {LATERAL_ORGANS[answer]}, not where the map points")
    if intent == "size":
        area = _AREA.search(body)
        if area is None:
            problems.append("no measured area for a size answer")
        else:
            stated = size_bins[int(np.searchsorted(np.asarray(size_edges_mm2), float(area["area"]), side="right"))]
            if stated != answer:
                problems.append(f"the measured area is {stated}, the answer says {answer}")
    return problems
