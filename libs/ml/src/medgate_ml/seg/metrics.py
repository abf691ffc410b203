"""Evaluation: overlap and surface metrics from MONAI, plus lesion-wise detection.

Per test volume that contains a lesion: Dice, Jaccard, HD95 and ASD (symmetric, in mm at
the volume's spacing). A volume where the prediction is empty gets the volume's diagonal
as HD95 and ASD (MONAI would return inf), so means stay finite and such misses weigh
heavily. Normal volumes (no lesion) count toward detection only: any predicted lesion on
them is a false positive.

Lesion-wise detection, pooled over the test set: a true lesion (a generator instance, which
may have several fragments) is found when the predicted components touching it cover it
with IoU >= 0.1; a predicted component is a true positive when at least 10 % of it lies
on a lesion. F1 is the harmonic mean of those precision and recall.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import torch
from monai.metrics.hausdorff_distance import compute_hausdorff_distance
from monai.metrics.meandice import compute_dice
from monai.metrics.meaniou import compute_iou
from monai.metrics.surface_distance import compute_average_surface_distance
from scipy import ndimage

from medgate_ml.seg.losses import CONNECTIVITY

MIN_IOU = 0.1


@dataclass
class VolumeScore:
    name: str
    has_lesion: bool
    dice: float | None
    jaccard: float | None
    hd95_mm: float | None
    asd_mm: float | None
    lesions: int
    found: int
    predicted: int
    true_predicted: int


def postprocess(
    probability: npt.NDArray[np.float32], threshold: float = 0.5, min_voxels: int = 8
) -> npt.NDArray[np.bool_]:
    """Threshold, then drop 26-connected islands smaller than ``min_voxels``."""
    mask = probability >= threshold
    labels, count = ndimage.label(mask, structure=CONNECTIVITY)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    out: npt.NDArray[np.bool_] = keep[labels]
    return out


def _onehot(mask: npt.NDArray[np.bool_]) -> torch.Tensor:
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    return torch.cat([1.0 - m, m], dim=1)


def score_volume(
    pred: npt.NDArray[np.bool_], instances: npt.NDArray[np.integer], name: str, spacing: tuple[float, float, float]
) -> VolumeScore:
    truth = instances > 0
    comps, n_pred = ndimage.label(pred, structure=CONNECTIVITY)
    true_pred = 0
    for c in range(1, n_pred + 1):
        comp = comps == c
        if (comp & truth).sum() >= 0.1 * comp.sum():
            true_pred += 1
    ids = [int(i) for i in np.unique(instances) if i > 0]
    found = 0
    for i in ids:
        lesion = instances == i
        touching = np.unique(comps[lesion])
        covered = np.isin(comps, touching[touching > 0])
        union = (covered | lesion).sum()
        if union and (covered & lesion).sum() / union >= MIN_IOU:
            found += 1
    if not truth.any():
        return VolumeScore(name, False, None, None, None, None, 0, 0, n_pred, true_pred)
    p, t = _onehot(pred), _onehot(truth)
    dice = float(compute_dice(p, t, include_background=False)[0, 0])
    jaccard = float(compute_iou(p, t, include_background=False)[0, 0])
    if pred.any():
        with warnings.catch_warnings():
            # MONAI 1.6 warns about an argument that its own surface-distance code passes.
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"monai\.")
            hd95 = float(
                compute_hausdorff_distance(p, t, include_background=False, percentile=95, spacing=spacing)[0, 0]
            )
            asd = float(
                compute_average_surface_distance(p, t, include_background=False, symmetric=True, spacing=spacing)[0, 0]
            )
    else:
        hd95 = asd = float(np.linalg.norm(np.asarray(pred.shape) * np.asarray(spacing)))
    return VolumeScore(name, True, dice, jaccard, hd95, asd, len(ids), found, n_pred, true_pred)


def summarise(scores: list[VolumeScore]) -> dict[str, float]:
    """Means over lesion-bearing volumes, pooled detection, and false-positive normal volumes."""
    lesion = [s for s in scores if s.has_lesion]
    out: dict[str, float] = {}
    for key in ("dice", "jaccard", "hd95_mm", "asd_mm"):
        out[key] = float(np.mean([getattr(s, key) for s in lesion])) if lesion else float("nan")
    lesions = sum(s.lesions for s in scores)
    predicted = sum(s.predicted for s in scores)
    recall = sum(s.found for s in scores) / lesions if lesions else float("nan")
    precision = sum(s.true_predicted for s in scores) / predicted if predicted else 1.0
    out["lesion_recall"] = recall
    out["lesion_precision"] = precision
    out["lesion_f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    normals = [s for s in scores if not s.has_lesion]
    out["normal_with_fp"] = float(sum(s.predicted > 0 for s in normals))
    out["normal_volumes"] = float(len(normals))
    return out


def as_rows(scores: list[VolumeScore]) -> list[dict[str, object]]:
    return [asdict(s) for s in scores]
