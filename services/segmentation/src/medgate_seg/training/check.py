"""Score the exported model (ONNX Runtime, the file that is served, loaded and checked against
its card as the service loads it) on the held-out test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medgate_ml.seg.data import SPACING_MM, held_out_set
from medgate_ml.seg.metrics import postprocess, score_volume, summarise
from medgate_ml.seg.train import sliding_probability
from medgate_seg.core.model import LesionModel


class OnnxWindow:
    """The served model's backend called like a torch module (for MONAI's sliding window)."""

    def __init__(self, model: LesionModel) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        card = self.model.card
        out = self.model.backend.infer({card.input: x.numpy()}).outputs[card.output]
        return torch.from_numpy(np.asarray(out))


def score_onnx(folder: Path, count: int = 20) -> dict[str, float]:
    model = LesionModel.load(folder, threads=torch.get_num_threads())
    window, card = OnnxWindow(model), model.card
    scores = [
        score_volume(
            postprocess(sliding_probability(window, v.image, card.patch), card.threshold, card.min_lesion_voxels),
            v.instances,
            v.name,
            SPACING_MM,
        )
        for v in held_out_set(count)
    ]
    return summarise(scores)
