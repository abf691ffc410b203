"""Client Adaptive Adjustment: class-adaptive pseudo-label thresholds and the credal loss.

**Thresholds** (FreeMatch-style, kept per site across rounds in the ClientApp's state): an
EMA of the mean top confidence ``tau_g`` and of the mean class-probability vector ``p``
over the site's noisy-set predictions; class ``c`` accepts a pseudo-label when the top
probability reaches ``tau_c = (p_c / max p) * tau_g``. A class the model rarely predicts
has a small ``p_c`` and so a lower bar: minority samples are kept in instead of being
crowded out by one global threshold.

**Robust Credal Labeling Loss** (a reconstruction; the paper's formula is not public): the
target ``t`` with relaxation ``alpha`` defines the credal set ``{q : q(t) >= 1 - alpha}``.
A prediction inside the set costs nothing; otherwise the loss is ``KL(q_r || p)`` where
``q_r`` is ``p`` projected onto the set (``q_r(t) = 1 - alpha``, the rest of the mass
spread over the other classes in proportion to ``p``), held constant. ``alpha`` is per
sample: ``clip(1 - confidence, 0.05, 0.5)``, the confidence being the selector's clean
posterior for kept labels and the top probability for pseudo-labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional

ALPHA_MIN, ALPHA_MAX = 0.05, 0.5


@dataclass
class AdaptiveThresholds:
    classes: int
    momentum: float = 0.9  # per update (one update per round)
    tau_global: float = field(default=-1.0)
    class_probs: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tau_global < 0:
            self.tau_global = 1.0 / self.classes
        if not self.class_probs:
            self.class_probs = [1.0 / self.classes] * self.classes

    def update(self, probs: torch.Tensor) -> None:
        if probs.numel() == 0:
            return
        m = self.momentum
        self.tau_global = m * self.tau_global + (1 - m) * float(probs.max(dim=1).values.mean())
        mean = probs.mean(dim=0).tolist()
        self.class_probs = [m * old + (1 - m) * new for old, new in zip(self.class_probs, mean, strict=True)]

    def thresholds(self) -> torch.Tensor:
        p = torch.tensor(self.class_probs, dtype=torch.float32)
        return p / p.max() * self.tau_global

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(accepted mask, pseudo-labels) for the rows of ``probs``."""
        confidence, pseudo = probs.max(dim=1)
        return confidence >= self.thresholds()[pseudo], pseudo


def relaxation(confidence: torch.Tensor) -> torch.Tensor:
    return (1.0 - confidence).clamp(ALPHA_MIN, ALPHA_MAX)


def credal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Per-sample Robust Credal Labeling Loss (zero inside the credal set)."""
    log_p = functional.log_softmax(logits, dim=1)
    p = log_p.exp()
    onehot = functional.one_hot(targets, logits.shape[1]).to(p.dtype)
    with torch.no_grad():
        p_t = (p * onehot).sum(dim=1)
        others = (p * (1 - onehot)).clamp_min(1e-12)
        rest = others / others.sum(dim=1, keepdim=True)
        q = onehot * (1 - alpha)[:, None] + (1 - onehot) * alpha[:, None] * rest
        inside = p_t >= 1 - alpha
    kl = (q * (q.clamp_min(1e-12).log() - log_p)).sum(dim=1)
    return torch.where(inside, torch.zeros_like(kl), kl)
