"""The segmentation network of every method: a 3D U-Net from MONAI's dynamic-UNet blocks.

Four decoder scales each have a 1x1x1 head (strides 8, 4, 2 and 1 relative to the input),
which is the multi-scale decoding that deep supervision, DPR and PCBC work on. A projection
head maps the last decoder features to unit-length embeddings for the representation-space
alignment terms. Instance normalisation keeps small batches (2 labelled + 2 unlabelled
patches) stable and exports to ONNX as one operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.blocks.dynunet_block import UnetBasicBlock, UnetOutBlock, UnetUpBlock
from torch import nn
from torch.nn import functional

#: Every spatial size the network sees must be a multiple of this (three 2x poolings).
DIVISOR = 8
NORM = ("instance", {"affine": True})
ACT = ("leakyrelu", {"negative_slope": 0.01, "inplace": True})


@dataclass
class SegOutput:
    """Logits per scale (coarsest first, finest last) and the projected features."""

    logits: list[torch.Tensor]
    features: torch.Tensor

    @property
    def final(self) -> torch.Tensor:
        return self.logits[-1]


class DeepSupervisedUNet(nn.Module):
    """Encoder (widths w, 2w, 4w, 8w) and decoder with a head at each of four scales."""

    def __init__(self, width: int = 8, classes: int = 2, embed: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 8 * width)
        self.classes = classes
        self.encoder = nn.ModuleList(
            [
                UnetBasicBlock(3, in_channels if i == 0 else widths[i - 1], widths[i], 3, 1 if i == 0 else 2, NORM, ACT)
                for i in range(4)
            ]
        )
        self.decoder = nn.ModuleList([UnetUpBlock(3, widths[i + 1], widths[i], 3, 1, 2, NORM, ACT) for i in (2, 1, 0)])
        # heads[0] reads the bottleneck (stride 8); heads[3] the full-resolution decoder.
        self.heads = nn.ModuleList([UnetOutBlock(3, widths[i], classes) for i in (3, 2, 1, 0)])
        self.projection = nn.Sequential(
            nn.Conv3d(width, width, 1), nn.LeakyReLU(0.01, inplace=True), nn.Conv3d(width, embed, 1)
        )

    def forward(self, x: torch.Tensor) -> SegOutput:
        skips = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
        logits = [self.heads[0](h)]
        for k, up in enumerate(self.decoder):
            h = up(h, skips[2 - k])
            logits.append(self.heads[k + 1](h))
        features = functional.normalize(self.projection(h), dim=1)
        return SegOutput(logits, features)


class Probabilities(nn.Module):
    """What is exported and served: softmax of the finest head of one network."""

    def __init__(self, net: DeepSupervisedUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(image).final, dim=1)


def upsampled(logits: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Logits of a coarse head at the input resolution (trilinear)."""
    if tuple(logits.shape[2:]) == tuple(size):
        return logits
    return functional.interpolate(logits, size=size, mode="trilinear", align_corners=False)
