"""Score an exported model (ONNX Runtime, the file that is served) on the held-out test set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from monai.inferers.utils import sliding_window_inference

from medgate_ml.seg.data import SPACING_MM, held_out_set
from medgate_ml.seg.metrics import postprocess, score_volume, summarise
from medgate_seg.training.model import CARD_NAME, ONNX_NAME


class OnnxWindow:
    """An ONNX Runtime session called like a torch module (for MONAI's sliding window)."""

    def __init__(self, path: Path, input_name: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = input_name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.numpy()})[0]
        return torch.from_numpy(np.asarray(out))


def onnx_probability(
    window: OnnxWindow, image: np.ndarray, patch: tuple[int, ...], overlap: float = 0.25
) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    out = sliding_window_inference(x, patch, 4, window, overlap=overlap, mode="gaussian")
    assert isinstance(out, torch.Tensor)
    result: np.ndarray = out[0, 1].numpy()
    return result


def score_onnx(folder: Path, count: int = 20) -> dict[str, float]:
    card = json.loads((folder / CARD_NAME).read_text())
    window = OnnxWindow(folder / ONNX_NAME, card["input"])
    patch = tuple(int(p) for p in card["patch"])
    scores = [
        score_volume(
            postprocess(onnx_probability(window, v.image, patch), card["threshold"], card["min_lesion_voxels"]),
            v.instances,
            v.name,
            SPACING_MM,
        )
        for v in held_out_set(count)
    ]
    return summarise(scores)
