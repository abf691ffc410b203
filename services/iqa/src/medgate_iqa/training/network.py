"""The quality network: a small strided CNN over the two views, with the modality as an
input, and two heads (per-attribute severity, overall verdict).

Global average *and* max pooling: average pooling sees diffuse problems (noise, blur,
contrast), max pooling keeps focal ones (an implant, a spike's stripes in one corner) from
being averaged away.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from medgate_iqa.core.labels import ATTRIBUTES, SEVERITIES, VERDICTS


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class QualityNet(nn.Module):
    def __init__(self, width: int = 16, modalities: int = 2) -> None:
        super().__init__()
        chans = [2, width, width * 2, width * 4, width * 6, width * 8]
        self.features = nn.Sequential(*(_stage(a, b) for a, b in itertools.pairwise(chans)))
        hidden = 128
        self.mix = nn.Sequential(nn.Linear(chans[-1] * 2 + modalities, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3))
        self.severity = nn.Linear(hidden, len(ATTRIBUTES) * len(SEVERITIES))
        self.verdict = nn.Linear(hidden, len(VERDICTS))
        self.modalities = modalities

    def forward(self, image: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` (B, 2, G, G); ``modality`` (B, M) one-hot. Returns probabilities:
        severity (B, attributes, 3) and verdict (B, 3)."""
        sev, verdict = self.logits(image, modality)
        return torch.softmax(sev, dim=-1), torch.softmax(verdict, dim=-1)

    def logits(self, image: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(image)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), modality], dim=1)
        h = self.mix(pooled)
        return self.severity(h).view(-1, len(ATTRIBUTES), len(SEVERITIES)), self.verdict(h)
