"""The VQA experiment: the grounded model beside the ablation without grounding or pixel
attention (global features only; same data, network, heads, seeds and schedule), over
several seeds, scored on the held-out test seed. Every run is cached as JSON (keyed by its
spec), so an interrupted experiment resumes where it stopped."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SUMMARY_KEYS = (
    "closed_acc", "open_acc", "acc_seen", "acc_held_out", "pointing_acc", "mean_iou", "intent_acc",
    "acc_presence", "acc_modality", "acc_plane", "acc_organ_involved", "acc_quality",
    "acc_location", "acc_side", "acc_count", "acc_size", "acc_largest_organ",
)  # fmt: skip


@dataclass(frozen=True)
class RunSpec:
    seed: int
    grounded: bool
    epochs: int
    train_studies: int
    test_studies: int

    @property
    def name(self) -> str:
        kind = "grounded" if self.grounded else "global_only"
        return f"{kind}-s{self.seed}-e{self.epochs}-n{self.train_studies}-t{self.test_studies}"


def run_one(spec: RunSpec, folder: Path | None = None) -> dict[str, object]:
    """Train and score one run (or read it back, if another process recorded it meanwhile)."""
    if folder is not None and run_path(folder, spec).is_file():
        cached: dict[str, object] = json.loads(run_path(folder, spec).read_text())
        return cached
    import torch

    from medgate_ml.vqa.data import evaluation_set, training_set
    from medgate_ml.vqa.train import Hyper, evaluate, hyper_dict, train

    torch.set_num_threads(1)
    hyper = Hyper(epochs=spec.epochs)
    run = train(training_set(spec.train_studies), hyper, spec.seed, grounded=spec.grounded)
    metrics = evaluate(run.net, evaluation_set(spec.test_studies))
    return {"spec": asdict(spec), "hyper": hyper_dict(hyper), "seconds": round(run.seconds, 1), "metrics": metrics}


def run_path(folder: Path, spec: RunSpec) -> Path:
    return folder / "runs" / f"{spec.name}.json"


def record(folder: Path, spec: RunSpec, result: dict[str, object]) -> None:
    path = run_path(folder, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def run_all(specs: list[RunSpec], folder: Path, workers: int) -> list[dict[str, object]]:
    """Runs every spec not cached yet. One worker runs them in order and looks at the cache
    before each (so ``medgate vlm train`` running beside it can supply the grounded seed-0 run)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if workers <= 1:
        for spec in specs:
            if not run_path(folder, spec).is_file():
                result = run_one(spec)
                record(folder, spec, result)
                print(f"done {spec.name} in {result['seconds']} s", flush=True)
    else:
        todo = [s for s in specs if not run_path(folder, s).is_file()]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for spec, result in zip(todo, pool.map(run_one, todo, [folder] * len(todo)), strict=True):
                record(folder, spec, result)
                print(f"done {spec.name} in {result['seconds']} s", flush=True)
    return [json.loads(run_path(folder, s).read_text()) for s in specs]


def summary_table(results: list[dict[str, object]]) -> str:
    """Markdown: mean ± std over seeds per variant, one row per metric."""
    groups: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, list[float]] = {}
    for r in results:
        spec, metrics = r["spec"], r["metrics"]
        assert isinstance(spec, dict)
        assert isinstance(metrics, dict)
        kind = "grounded + pixel attention" if spec["grounded"] else "ablation: global features only"
        groups.setdefault(kind, []).append(metrics)
        sec = r["seconds"]
        assert isinstance(sec, float | int)
        seconds.setdefault(kind, []).append(float(sec))
    kinds = list(groups)
    lines = ["| metric | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for key in (*SUMMARY_KEYS, "train_seconds"):
        cells = []
        for kind in kinds:
            values = seconds[kind] if key == "train_seconds" else [m[key] for m in groups[kind] if key in m]
            if not values:
                cells.append("—")
            elif key == "train_seconds":
                cells.append(f"{np.mean(values):.0f}")
            else:
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f} (n={len(values)})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
