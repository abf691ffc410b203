"""Training loop, sliding-window evaluation and ONNX export for the segmentation methods."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.inferers.utils import sliding_window_inference

from medgate_ml.export import ExportReport, export_onnx
from medgate_ml.seg.data import PATCH, SPACING_MM, PatchSampler, Volume
from medgate_ml.seg.methods import BarlParts, Hyper, Method, make_method
from medgate_ml.seg.metrics import VolumeScore, postprocess, score_volume, summarise
from medgate_ml.seg.network import DeepSupervisedUNet, Probabilities

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    method: Method
    seconds: float
    history: list[dict[str, float]]


def train_method(
    name: str,
    labelled: Sequence[Volume],
    unlabelled: Sequence[Volume],
    hyper: Hyper,
    seed: int,
    parts: BarlParts | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    device: str = "cpu",
) -> RunResult:
    """Train one method; ``device`` places its networks and batches (patch sampling and the
    augmentation draws stay on the CPU, so a GPU run sees the same patches and views)."""
    torch.manual_seed(seed)
    method = make_method(name, hyper, seed, parts, device)
    rng = np.random.default_rng([seed, 3])
    lab = PatchSampler(labelled, rng)
    unl = PatchSampler(unlabelled, rng) if unlabelled and method.uses_unlabelled else None
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(hyper.iterations):
        terms = method.step(step, lab, unl)
        if step % 50 == 0 or step == hyper.iterations - 1:
            history.append({"step": float(step), **terms})
            if progress is not None:
                progress(step, terms)
    return RunResult(method, time.perf_counter() - start, history)


def sliding_probability(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    patch: Sequence[int] = PATCH,
    overlap: float = 0.25,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Lesion probability of a [D, H, W] volume by Gaussian-blended sliding windows of
    ``patch``; ``model`` maps [N, 1, *patch] to softmax [N, 2, *patch] (torch or ONNX).
    The windows run on ``device`` (a torch model's); the result is a CPU array."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(device)
    with torch.no_grad():
        out = sliding_window_inference(
            x, tuple(patch), 4, model, overlap=overlap, mode="gaussian", padding_mode="constant"
        )
    assert isinstance(out, torch.Tensor)
    result: np.ndarray = out[0, 1].cpu().numpy()
    return result


def predict(net: DeepSupervisedUNet, image: np.ndarray, overlap: float = 0.25) -> np.ndarray:
    """Lesion probability of one network (the finest head's softmax) over a whole volume."""
    device = next(net.parameters()).device
    return sliding_probability(Probabilities(net).eval(), image, PATCH, overlap, device)


def evaluate(net: DeepSupervisedUNet, volumes: Sequence[Volume]) -> tuple[dict[str, float], list[VolumeScore]]:
    scores = [score_volume(postprocess(predict(net, v.image)), v.instances, v.name, SPACING_MM) for v in volumes]
    return summarise(scores), scores


def export(net: DeepSupervisedUNet, path: Path) -> ExportReport:
    """The served model: softmax of the finest head, dynamic batch and spatial size."""
    model = Probabilities(net).eval()
    example = torch.rand(1, 1, *PATCH)
    check = torch.rand(1, 1, 32, 64, 56)
    return export_onnx(
        model, example, path, input_name="image", output_names=("probabilities",), dynamic_batch=True,
        spatial_dynamic=True, check_inputs=(check,),
    )  # fmt: skip
