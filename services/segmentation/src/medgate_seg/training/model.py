"""Train the served lesion model, score it on the held-out test set, export it to ONNX and
write its card (``lesion_seg.json`` for machines, ``MODEL_CARD.md`` for people).

The card's contract fields (input/output names, spacing, patch, window, threshold) are what
the serving code reads; nothing about the model is hard-coded on the serving side.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from medgate_ml.seg.data import (
    MAX_LESIONS,
    PATCH,
    SLICES,
    SPACING_MM,
    TEST_SEED,
    TRAIN_SEED,
    WINDOW_HU,
    held_out_set,
    labelled_split,
    training_set,
)
from medgate_ml.seg.methods import Hyper
from medgate_ml.seg.metrics import MIN_IOU
from medgate_ml.seg.network import DIVISOR, DeepSupervisedUNet
from medgate_ml.seg.train import evaluate, export, train_method
from medgate_seg.core.model import CARD_FILE, MODEL_FILE, weights_dir

NAME = "medgate-lesion-seg"
#: The torch weights beside the served ONNX file (parity and speed checks; not in the wheel).
TORCH_NAME = "lesion_seg.pt"
THRESHOLD, MIN_LESION_VOXELS = 0.5, 8


def load_torch(folder: Path | None = None) -> DeepSupervisedUNet:
    """The committed network in torch (the predictor branch), for parity and speed checks."""
    folder = folder or weights_dir()
    card = json.loads((folder / CARD_FILE).read_text())
    net = DeepSupervisedUNet(width=int(card["training"]["hyper"]["width"]))
    net.load_state_dict(torch.load(folder / TORCH_NAME, map_location="cpu", weights_only=True))
    return net.eval()


def train_served_model(
    out: Path,
    method: str = "barl",
    ratio: float = 0.10,
    seed: int = 0,
    iterations: int = 2000,
    train_count: int = 80,
    test_count: int = 20,
    version: str = "1.0.0",
) -> dict[str, object]:
    # One thread by default: float reductions then run in the same order on every machine.
    torch.set_num_threads(int(os.environ.get("MEDGATE_SEG_THREADS", "1")))
    train = training_set(train_count)
    labelled_idx, unlabelled_idx = labelled_split(len(train), ratio, seed)
    hyper = Hyper(iterations=iterations)
    run = train_method(method, [train[i] for i in labelled_idx], [train[i] for i in unlabelled_idx], hyper, seed)
    net = run.method.predictor.eval()
    summary, _ = evaluate(net, held_out_set(test_count))
    out.mkdir(parents=True, exist_ok=True)
    report = export(net, out / MODEL_FILE)
    torch.save(net.state_dict(), out / TORCH_NAME)
    card: dict[str, object] = {
        "name": NAME,
        "version": version,
        "sha256": report.sha256,
        "opset": report.opset,
        "onnx_torch_max_abs_diff": report.max_abs_diff,
        "input": "image",
        "output": "probabilities",
        "spacing_mm": list(SPACING_MM),
        "patch": list(PATCH),
        "divisible_by": DIVISOR,
        "window_hu": list(WINDOW_HU),
        "modalities": ["CT"],
        "classes": ["background", "lesion"],
        "threshold": THRESHOLD,
        "min_lesion_voxels": MIN_LESION_VOXELS,
        "training": {
            "method": method,
            "labelled_fraction": ratio,
            "labelled_volumes": len(labelled_idx),
            "unlabelled_volumes": len(unlabelled_idx) if method != "supervised" else 0,
            "seed": seed,
            "hyper": asdict(hyper),
            "seconds": round(run.seconds, 1),
            "data": {
                "generator": "medgate_common.synth.generate_study (CT, profiles site-a/b/c)",
                "train_seed": TRAIN_SEED,
                "train_volumes": train_count,
                "test_seed": TEST_SEED,
                "test_volumes": test_count,
                "slices": SLICES,
                "max_lesions": MAX_LESIONS,
            },
            "command": (
                f"medgate seg train --method {method} --labelled {ratio} --seed {seed} --iterations {iterations}"
            ),
            "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "test_metrics": {k: round(v, 4) for k, v in summary.items()},
        "detection_min_iou": MIN_IOU,
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(card))
    return card


def model_card(card: dict[str, object]) -> str:
    t = card["training"]
    m = card["test_metrics"]
    assert isinstance(t, dict)
    assert isinstance(m, dict)
    data, hyper = t["data"], t["hyper"]
    assert isinstance(data, dict)
    w = int(hyper["width"])
    fp = f"{m['normal_with_fp']:.0f} of {m['normal_volumes']:.0f}"
    return f"""# {card["name"]} {card["version"]}

Lesion segmentation for CT volumes, trained with {t["method"].upper()} (semi-supervised:
{t["labelled_volumes"]} labelled and {t["unlabelled_volumes"]} unlabelled training volumes).
Research software on synthetic data: not a medical device, not validated on patients.

- **File**: `lesion_seg.onnx`, sha256 `{card["sha256"]}`, opset {card["opset"]}; the torch
  weights of the same network are in `lesion_seg.pt` (not shipped in the wheel).
- **Input** `{card["input"]}`: float32 [N, 1, D, H, W], a CT volume resampled to
  {card["spacing_mm"]} mm (z, y, x) and mapped from the HU window {card["window_hu"]} to [0, 1];
  spatial sizes are free (sliding windows of {card["patch"]} are what it was trained on).
- **Output** `{card["output"]}`: float32 [N, 2, D, H, W] softmax (channel 1 = lesion); a lesion
  voxel is probability >= {card["threshold"]}, islands under {card["min_lesion_voxels"]} voxels dropped.
- **Network**: 3D U-Net from MONAI dynamic-UNet blocks, widths {w}-{2 * w}-{4 * w}-{8 * w},
  deep supervision at four scales (training only).
- **Data**: `{data["generator"]}`; training seed {data["train_seed"]} ({data["train_volumes"]} volumes,
  1-{data["max_lesions"]} fragmented lesions each, {data["slices"]} slices of 3 mm), held-out test seed
  {data["test_seed"]} ({data["test_volumes"]} volumes, one in five normal).
- **Training**: `{t["command"]}` (seed {t["seed"]}, {hyper["iterations"]} iterations,
  AdamW lr {hyper["lr"]}, {t["seconds"]} s on this machine).
- **Held-out test metrics**: Dice {m["dice"]:.3f}, Jaccard {m["jaccard"]:.3f}, HD95 {m["hd95_mm"]:.1f} mm,
  ASD {m["asd_mm"]:.1f} mm, lesion-wise F1 {m["lesion_f1"]:.3f} (recall {m["lesion_recall"]:.3f}, precision
  {m["lesion_precision"]:.3f}), normal volumes with a false positive {fp}.
- **ONNX vs torch**: largest absolute difference {card["onnx_torch_max_abs_diff"]:.2e} at export.
- **Limits**: trained on synthetic abdominal CT only; lesions are small, low-contrast blobs in
  liver, spleen and kidneys; no MR. The method comparison and ablation are in
  docs/results/barl.md.
"""
