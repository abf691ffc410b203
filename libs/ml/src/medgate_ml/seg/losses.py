"""Loss terms of BARL and the baselines.

The BARL paper's method section is not public; each term follows the reconstruction in
``shared/research/barl_fedgsca.md`` (section 1.2), and every choice made where that text
leaves room is written next to the code that makes it (and listed in docs/barl.md).

All per-scale terms work on logits upsampled to the patch resolution, so scales are
compared voxel for voxel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch.nn import functional

from medgate_ml.seg.network import upsampled

EPS = 1e-6
#: 26-connectivity for lesion components in 3D.
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def ramp(step: int, ramp_steps: int) -> float:
    """Sigmoid-shaped ramp-up exp(-5 (1 - t)^2), t = step / ramp_steps clipped to 1."""
    t = min(step / max(ramp_steps, 1), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def soft_dice(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice of the lesion channel, pooled over the batch (patches without lesion are fine)."""
    p = probs[:, 1]
    t = (target == 1).float()
    inter = (p * t).sum()
    return 1.0 - (2.0 * inter + 1.0) / (p.sum() + t.sum() + 1.0)


def scale_weights(count: int) -> list[float]:
    """Weights of the scales, coarsest first: each coarser scale counts half the next finer
    one (nnU-Net's deep-supervision weighting), normalised to sum to 1. The stride-8 head
    cannot draw a lesion of a few voxels; equal weights would let it dominate."""
    raw = [2.0**k for k in range(count)]
    return [w / sum(raw) for w in raw]


def supervised(logits: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Deep supervision: CE + Dice at every scale, weighted by :func:`scale_weights`."""
    size = tuple(target.shape[1:])
    total = torch.zeros((), device=target.device)
    for w, z in zip(scale_weights(len(logits)), logits, strict=True):
        z = upsampled(z, size)
        total = total + w * (functional.cross_entropy(z, target) + soft_dice(torch.softmax(z, 1), target))
    return total


def masked_ce(logits: torch.Tensor, pseudo: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ce = functional.cross_entropy(logits, pseudo, reduction="none")
    return (ce * mask).sum() / (mask.sum() + EPS)


def dual_path(
    logits_a: list[torch.Tensor], logits_b: list[torch.Tensor], size: tuple[int, ...], tau: float
) -> torch.Tensor:
    """Dual-Path Regularization: each branch's confident hard labels supervise the other, at
    every scale given (A -> B and B -> A are the two paths). With only the finest scale and
    ``tau = 0`` this is Cross Pseudo Supervision."""
    total = torch.zeros((), device=logits_a[0].device)
    for w, za, zb in zip(scale_weights(len(logits_a)), logits_a, logits_b, strict=True):
        za, zb = upsampled(za, size), upsampled(zb, size)
        with torch.no_grad():
            conf_a, pseudo_a = torch.softmax(za, 1).max(1)
            conf_b, pseudo_b = torch.softmax(zb, 1).max(1)
        total = total + w * masked_ce(zb, pseudo_a, (conf_a >= tau).float())
        total = total + w * masked_ce(za, pseudo_b, (conf_b >= tau).float())
    return total


def reliability(divergence: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
    """exp(-D) at this scale, times the weight carried from the coarser scales (if any)."""
    weight = torch.exp(-divergence)
    return weight if coarser is None else weight * coarser


def bias_correction(
    logits_a: list[torch.Tensor], logits_b: list[torch.Tensor], size: tuple[int, ...], progressive: bool = True
) -> torch.Tensor:
    """Progressively Cognitive Bias Correction, coarse to fine.

    At each scale the branches' consensus P̄ is the target; their disagreement D (the mean
    KL of each branch to P̄, a Jensen-Shannon divergence) becomes a reliability weight
    exp(-D). The weight is carried down the decoder: a voxel the branches disagreed on at a
    coarse scale stays down-weighted at every finer one (``progressive=False`` uses each
    scale's own weight only, the ablation of the "progressive" part). The trailing mean(D)
    pulls the branches together where they disagree, as URPC's variance term does.
    """
    total = torch.zeros((), device=logits_a[0].device)
    carried: torch.Tensor | None = None
    for w, za, zb in zip(scale_weights(len(logits_a)), logits_a, logits_b, strict=True):
        pa = torch.softmax(upsampled(za, size), 1)
        pb = torch.softmax(upsampled(zb, size), 1)
        mean = 0.5 * (pa + pb)
        target = mean.detach()
        log_m = torch.log(mean + EPS)
        divergence = 0.5 * (
            (pa * (torch.log(pa + EPS) - log_m)).sum(1, keepdim=True)
            + (pb * (torch.log(pb + EPS) - log_m)).sum(1, keepdim=True)
        )
        weight = reliability(divergence.detach(), carried if progressive else None)
        carried = weight
        norm = weight.mean() + EPS
        for p in (pa, pb):
            total = total + w * (weight * (p - target) ** 2).mean() / norm
        total = total + w * divergence.mean()
    return total


def prototype(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of ``features`` [C, ...] over ``mask`` [...]."""
    return (features * mask).flatten(1).sum(1) / (mask.sum() + EPS)


def region_alignment(
    features_a: torch.Tensor, features_b: torch.Tensor, masks: torch.Tensor, min_voxels: int = 5
) -> torch.Tensor:
    """Region-level alignment: per image and class, the two branches' class prototypes (masked
    mean embeddings) are pulled together by cosine. ``masks`` [N, D, H, W] holds class ids,
    -1 where no class is trusted (unlabelled voxels the branches disagree on)."""
    terms = []
    for n in range(features_a.shape[0]):
        for k in (0, 1):
            m = (masks[n] == k).float()[None]
            if float(m.sum()) < min_voxels:
                continue
            ca, cb = prototype(features_a[n], m), prototype(features_b[n], m)
            terms.append(1.0 - functional.cosine_similarity(ca, cb, dim=0))
    if not terms:
        return torch.zeros((), device=features_a.device)
    return torch.stack(terms).mean()


def components(mask: np.ndarray, min_voxels: int, limit: int) -> list[np.ndarray]:
    """Connected components (26-connected) of at least ``min_voxels``, largest first, at most ``limit``."""
    labels, count = ndimage.label(mask, structure=CONNECTIVITY)
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    keep = [i + 1 for i in np.argsort(-sizes) if sizes[i] >= min_voxels][:limit]
    return [labels == i for i in keep]


def match_instances(inst_a: list[np.ndarray], inst_b: list[np.ndarray], min_iou: float = 0.1) -> list[tuple[int, int]]:
    """Hungarian matching of the two branches' lesion instances on IoU; pairs above ``min_iou``."""
    if not inst_a or not inst_b:
        return []
    iou = np.zeros((len(inst_a), len(inst_b)))
    for i, a in enumerate(inst_a):
        for j, b in enumerate(inst_b):
            inter = np.logical_and(a, b).sum()
            if inter:
                iou[i, j] = inter / np.logical_or(a, b).sum()
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] > min_iou]


def _mask(component: np.ndarray, device: torch.device) -> torch.Tensor:
    """A boolean component as a [1, ...] float mask on the features' device."""
    return torch.from_numpy(component).float()[None].to(device)


def instance_alignment(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    fg_a: np.ndarray,
    fg_b: np.ndarray,
    background: torch.Tensor,
    *,
    min_voxels: int = 8,
    limit: int = 16,
    temperature: float = 0.1,
    gamma: float = 0.5,
) -> torch.Tensor:
    """Lesion-instance alignment between branches.

    Each branch's foreground [N, D, H, W] (its confident lesion voxels, or the ground truth
    on labelled images) is split into connected components; components are matched across
    branches by Hungarian assignment on IoU. A matched pair's embeddings (masked means of
    the features over each branch's own component) are pulled together by cosine, and an
    instance-contrastive (InfoNCE) term keeps different lesions of the same image apart,
    with the image's background prototype ``background`` [N, C] as one more negative.
    """
    terms = []
    for n in range(features_a.shape[0]):
        inst_a = components(fg_a[n], min_voxels, limit)
        inst_b = components(fg_b[n], min_voxels, limit)
        pairs = match_instances(inst_a, inst_b)
        if not pairs:
            continue
        device = features_a.device
        za = torch.stack([prototype(features_a[n], _mask(inst_a[i], device)) for i, _ in pairs])
        zb = torch.stack([prototype(features_b[n], _mask(inst_b[j], device)) for _, j in pairs])
        za, zb = functional.normalize(za, dim=1), functional.normalize(zb, dim=1)
        loss = (1.0 - (za * zb).sum(1)).mean()
        if len(pairs) >= 2:
            negatives = torch.cat([zb, functional.normalize(background[n], dim=0)[None]])
            logits = za @ negatives.T / temperature
            loss = loss + gamma * functional.cross_entropy(logits, torch.arange(len(pairs), device=device))
        terms.append(loss)
    if not terms:
        return torch.zeros((), device=features_a.device)
    return torch.stack(terms).mean()
