"""``medgate iqa speed``: the same network through ONNX Runtime and through torch, same
inputs, same run, interleaved rounds; reports milliseconds per slice and the ORT / torch
ratio, plus the parity (largest absolute difference) on those inputs."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from medgate_iqa.core.model import QualityModel, weights_dir
from medgate_iqa.core.sources import base_slices
from medgate_iqa.core.views import model_input, stack_input
from medgate_iqa.training.network import QualityNet
from medgate_iqa.training.train import _Exported


def load_torch(folder: Path) -> torch.nn.Module:
    """The torch twin of ``folder``'s ONNX file, with the same single-tensor signature."""
    card = json.loads((folder / "quality.json").read_text())
    net = QualityNet(width=int(card["config"]["width"]))
    net.load_state_dict(torch.load(folder / "quality.pt", map_location="cpu", weights_only=True))
    return _Exported(net.eval()).eval()


def held_out_inputs(count: int) -> np.ndarray:
    slices = base_slices("test")[:count]
    views = np.stack([model_input(s.image, s.modality) for s in slices])
    return stack_input(views, np.array([0 if s.modality == "CT" else 1 for s in slices]))


def measure(folder: Path | None = None, rounds: int = 7, batches: tuple[int, ...] = (1, 12)) -> dict[str, object]:
    folder = folder or weights_dir()
    model = QualityModel.load(folder)
    torch_net = load_torch(folder)
    x = held_out_inputs(max(batches))
    worst = 0.0
    rows = []
    for batch in batches:
        feed = x[:batch]
        timings: dict[str, list[float]] = {"onnxruntime": [], "torch": []}
        for _ in range(rounds):
            started = time.perf_counter()
            got = model.backend.infer({"image": feed}).outputs
            timings["onnxruntime"].append((time.perf_counter() - started) * 1000 / batch)
            started = time.perf_counter()
            with torch.no_grad():
                ref = torch_net(torch.from_numpy(feed))
            timings["torch"].append((time.perf_counter() - started) * 1000 / batch)
            worst = max(worst, float(np.abs(got["severity"] - ref[0].numpy()).max()))
            worst = max(worst, float(np.abs(got["verdict"] - ref[1].numpy()).max()))
        ort_ms = statistics.median(timings["onnxruntime"][1:])
        torch_ms = statistics.median(timings["torch"][1:])
        rows.append(
            {
                "batch": batch,
                "onnxruntime_ms_per_slice": round(ort_ms, 3),
                "torch_ms_per_slice": round(torch_ms, 3),
                "ratio_ort_over_torch": round(ort_ms / torch_ms, 3),
            }
        )
    return {"rounds": rounds, "threads": torch.get_num_threads(), "max_abs_diff": worst, "rows": rows}
