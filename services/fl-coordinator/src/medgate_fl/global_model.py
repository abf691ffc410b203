"""The global model after a deployed run: held-out scoring, the torch weights, an ONNX file
checked against torch, and a model card.

Files written into the run's ``out-dir``: ``global.pt`` (state dict), ``global.onnx``
(weights embedded, dynamic batch; input ``image`` float32 ``[N, 1, 64, 64]`` in [0, 1],
output ``logits`` ``[N, classes]``) and ``model_card.json`` (task, classes, rounds,
strategy, the run config, held-out metrics of the final model and the files' sha256).
The network is whatever :func:`medgate_fl.task.build_model` builds; nothing here depends
on its layers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from flwr.app import ArrayRecord

from medgate_common.storage import sha256_file
from medgate_fl import data
from medgate_fl.rounds import Evaluate
from medgate_fl.task import build_model, evaluate

WEIGHTS, ONNX, CARD = "global.pt", "global.onnx", "model_card.json"
INPUT, OUTPUT = "image", "logits"


def class_names(task: str) -> tuple[str, ...]:
    return data.BINARY_CLASSES if task == "binary" else data.CLASSES


def held_out_evaluator(task: str, count: int, seed: int = 0, cache_dir: Path | None = None) -> Evaluate:
    """Scores arrays of the global model on ``count`` clean held-out slices of every profile
    (generated once, on first use)."""
    classes = data.num_classes(task)
    held_out: list[data.SiteData] = []

    def score(arrays: ArrayRecord) -> dict[str, float]:
        if not held_out:
            held_out.append(data.held_out_data(count, seed, cache_dir=cache_dir))
        test = held_out[0]
        model = build_model(classes)
        model.load_state_dict(arrays.to_torch_state_dict())
        return evaluate(model, test.images, data.task_labels(test.labels, task), classes)

    return score


def export_global_model(
    state: Mapping[str, torch.Tensor],
    task: str,
    out: Path,
    *,
    run_config: Mapping[str, object],
    rounds: int,
    metrics: Mapping[str, float],
    tolerance: float = 1e-4,
) -> dict[str, object]:
    """Write the weights, the ONNX file (parity with torch <= ``tolerance`` on random
    slices, else :class:`~medgate_common.errors.ModelError`) and the card; return the card."""
    from medgate_ml.export import export_onnx

    classes = class_names(task)
    model = build_model(len(classes))
    model.load_state_dict(dict(state))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), out / WEIGHTS)
    gen = torch.Generator().manual_seed(0)
    shape = (1, 1, data.SIZE, data.SIZE)
    example = torch.rand(shape, generator=gen)
    batch = torch.rand((4, *shape[1:]), generator=gen)
    report = export_onnx(
        model, example, out / ONNX, input_name=INPUT, output_names=(OUTPUT,), tolerance=tolerance, check_inputs=(batch,)
    )
    card: dict[str, object] = {
        "name": "medgate-fl-triage",
        "task": task,
        "classes": list(classes),
        "input": {
            "name": INPUT,
            "shape": ["N", 1, data.SIZE, data.SIZE],
            "window_hu": list(data.WINDOW_HU),
            "resize": "area",
        },
        "output": {"name": OUTPUT, "shape": ["N", len(classes)], "meaning": "class logits (softmax for probabilities)"},
        "rounds": rounds,
        "strategy": str(run_config.get("strategy", "fedgsca")),
        "run_config": {k: v for k, v in run_config.items() if isinstance(v, bool | int | float | str)},
        "held_out_metrics": {k: round(float(v), 4) for k, v in metrics.items()},
        "files": {
            WEIGHTS: {"sha256": sha256_file(out / WEIGHTS)},
            ONNX: {"sha256": report.sha256, "opset": report.opset, "bytes": report.size_bytes},
        },
        "sha256": report.sha256,
        "onnx_torch_max_abs_diff": report.max_abs_diff,
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "note": "Research software trained on synthetic data; not a medical device.",
    }
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
