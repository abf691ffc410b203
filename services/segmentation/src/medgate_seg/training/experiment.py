"""The BARL experiment: every method at every label ratio and seed, and the ablation grid.

Each run trains one method from scratch on the same synthetic CT training set, then scores
it on the same held-out test set. Runs are independent and resumable: each writes
``runs/<key>.json`` under the output folder and is skipped when that file exists, so an
interrupted grid continues where it stopped. Runs execute in a process pool (one torch
thread per process), because two single-threaded runs use two small cores better than one
run with two threads. On a GPU (``device="cuda"``) the pool's processes share the card; a
run records the device it trained on, and its numbers are not bit-identical to a CPU run's.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RATIOS = (0.05, 0.10)
SEEDS = (0, 1, 2)
COMPARED = ("supervised", "mean_teacher", "cps", "barl")
ABLATIONS = ("dpr", "pcbc", "region", "instance", "progressive")
METRICS = ("dice", "jaccard", "hd95_mm", "asd_mm", "lesion_f1", "lesion_recall", "lesion_precision")


@dataclass(frozen=True)
class RunSpec:
    method: str
    ratio: float  # labelled fraction; 1.0 is the fully supervised upper bound
    seed: int
    iterations: int
    without: str | None = None  # BARL part removed (ablation)
    train_count: int = 80
    test_count: int = 20
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        name = self.method if self.without is None else f"{self.method}-no_{self.without}"
        return f"{name}-r{round(self.ratio * 100):03d}-s{self.seed}-i{self.iterations}"


def comparison_specs(iterations: int, seeds: Sequence[int] = SEEDS, ratios: Sequence[float] = RATIOS) -> list[RunSpec]:
    specs = [RunSpec("supervised", 1.0, s, iterations) for s in seeds]
    specs += [RunSpec(m, r, s, iterations) for r in ratios for m in COMPARED for s in seeds]
    return specs


def ablation_specs(iterations: int, seeds: Sequence[int] = SEEDS, ratio: float = 0.10) -> list[RunSpec]:
    return [RunSpec("barl", ratio, s, iterations, without=part) for part in ABLATIONS for s in seeds]


def run_one(spec: RunSpec, out_dir: Path, keep_checkpoint: bool = False, device: str = "cpu") -> dict[str, object]:
    """Train and score one run in this process; returns the row written to runs/<key>.json."""
    import torch

    from medgate_ml.seg.data import held_out_set, labelled_split, training_set
    from medgate_ml.seg.methods import BarlParts, Hyper
    from medgate_ml.seg.metrics import as_rows
    from medgate_ml.seg.train import evaluate, train_method

    torch.set_num_threads(int(os.environ.get("MEDGATE_SEG_THREADS", "1")))
    train = training_set(spec.train_count)
    test = held_out_set(spec.test_count)
    labelled_idx, unlabelled_idx = labelled_split(len(train), spec.ratio, spec.seed)
    hyper = Hyper(iterations=spec.iterations, **spec.extra)  # type: ignore[arg-type]
    parts = BarlParts().without(spec.without) if spec.without else None
    result = train_method(
        spec.method,
        [train[i] for i in labelled_idx],
        [train[i] for i in unlabelled_idx],
        hyper,
        spec.seed,
        parts,
        device=device,
    )
    start = time.perf_counter()
    summary, scores = evaluate(result.method.predictor, test)
    row: dict[str, object] = {
        "key": spec.key,
        "spec": asdict(spec),
        "labelled": len(labelled_idx),
        "unlabelled": len(unlabelled_idx) if spec.method != "supervised" else 0,
        "hyper": asdict(hyper),
        "train_seconds": round(result.seconds, 1),
        "eval_seconds": round(time.perf_counter() - start, 1),
        "versions": versions(),
        "device": device_name(device),
        "summary": summary,
        "volumes": as_rows(scores),
        "history": result.history,
    }
    runs = out_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    if keep_checkpoint:
        torch.save(result.method.state(), runs / f"{spec.key}.pt")
    (runs / f"{spec.key}.json").write_text(json.dumps(row, indent=1) + "\n")
    return row


def versions() -> dict[str, str]:
    """Library versions a run's numbers depend on, stored with the run."""
    import monai
    import torch

    return {"torch": torch.__version__, "monai": monai.__version__, "numpy": np.__version__}


def device_name(device: str) -> str:
    """``cpu``, or the GPU's model beside the torch device (``cuda: NVIDIA H200``)."""
    import torch

    if device.startswith("cuda"):
        return f"{device}: {torch.cuda.get_device_name(torch.device(device))}"
    return device


def _cached(spec: RunSpec, out_dir: Path, device: str = "cpu") -> bool:
    """A stored run counts only if it was made from exactly this spec, on the same kind of
    device (runs from before devices were recorded are CPU runs)."""
    path = out_dir / "runs" / f"{spec.key}.json"
    if not path.exists():
        return False
    row = json.loads(path.read_text())
    stored = str(row.get("device", "cpu")).split(":")[0]
    return bool(row.get("spec") == asdict(spec) and stored == device.split(":")[0])


def _run_logged(args: tuple[RunSpec, Path, bool, str]) -> dict[str, object]:
    spec, out_dir, keep, device = args
    row = run_one(spec, out_dir, keep, device)
    summary = row["summary"]
    assert isinstance(summary, dict)
    print(
        f"{spec.key}: dice {summary['dice']:.3f} lesion F1 {summary['lesion_f1']:.3f} ({row['train_seconds']} s)",
        flush=True,
    )
    return row


def run_grid(
    specs: Iterable[RunSpec], out_dir: Path, workers: int = 2, keep_checkpoints: bool = False, device: str = "cpu"
) -> list[dict[str, object]]:
    """Run every spec not yet on disk (``workers`` at a time) and return all rows."""
    specs = list(specs)
    todo = [s for s in specs if not _cached(s, out_dir, device)]
    # Longest first, so that the pool does not end on one long run.
    todo.sort(key=lambda s: (s.method == "supervised", s.method == "mean_teacher"))
    if todo:
        jobs = [(s, out_dir, keep_checkpoints, device) for s in todo]
        if workers <= 1:
            for job in jobs:
                _run_logged(job)
        else:
            # CUDA cannot be used in a forked child once initialised; spawned workers start clean.
            context = multiprocessing.get_context("spawn" if device.startswith("cuda") else None)
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                list(pool.map(_run_logged, jobs))
    return [json.loads((out_dir / "runs" / f"{s.key}.json").read_text()) for s in specs]


def aggregate(rows: Sequence[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Mean and std over seeds of each metric, per (method, ablation, ratio)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        spec: dict[str, Any] = row["spec"]  # type: ignore[assignment]
        name = _label(spec)
        groups.setdefault(f"{name}@{spec['ratio']}", []).append(row)
    out: dict[str, dict[str, object]] = {}
    for key, members in groups.items():
        name, ratio = key.split("@")
        entry: dict[str, object] = {
            "method": name,
            "ratio": float(ratio),
            "seeds": sorted(int(m["spec"]["seed"]) for m in members),
        }
        for metric in METRICS:
            values = np.array([float(m["summary"][metric]) for m in members])
            entry[metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "runs": values.tolist(),
            }
        entry["normal_with_fp"] = float(np.mean([m["summary"]["normal_with_fp"] for m in members]))
        entry["train_seconds"] = float(np.mean([m["train_seconds"] for m in members]))
        out[key] = entry
    return out


def _cell(entry: dict[str, object], metric: str, scale: float = 1.0, digits: int = 1) -> str:
    value = entry[metric]
    assert isinstance(value, dict)
    return f"{value['mean'] * scale:.{digits}f} ± {value['std'] * scale:.{digits}f}"


def table(groups: dict[str, dict[str, object]], order: Sequence[str]) -> str:
    """Markdown table; ``order`` lists group keys ('barl@0.1')."""
    lines = [
        "| method | labelled | Dice % | Jaccard % | HD95 mm | ASD mm | lesion F1 % | recall % | precision % "
        "| FP normals | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in order:
        if key not in groups:
            continue
        e = groups[key]
        ratio = e["ratio"]
        assert isinstance(ratio, float)
        lines.append(
            f"| {e['method']} | {ratio * 100:.0f} % | {_cell(e, 'dice', 100)} | {_cell(e, 'jaccard', 100)} | "
            f"{_cell(e, 'hd95_mm')} | {_cell(e, 'asd_mm')} | {_cell(e, 'lesion_f1', 100)} | "
            f"{_cell(e, 'lesion_recall', 100)} | "
            f"{_cell(e, 'lesion_precision', 100)} | {e['normal_with_fp']:.1f} | {e['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def write_summary(specs: Sequence[RunSpec], out_dir: Path, name: str, workers: int = 2, device: str = "cpu") -> str:
    """Run what is missing, then write ``<name>.json`` (per group: mean, std, runs) and
    ``<name>.md`` (the table) under ``out_dir``; returns the table."""
    rows = run_grid(specs, out_dir, workers, device=device)
    groups = aggregate(rows)
    order = sorted(groups, key=lambda k: (-groups[k]["ratio"], _ORDER.get(str(groups[k]["method"]), 9), k))  # type: ignore[operator]
    text = table(groups, order) + "\n\n" + paired_table(rows)
    (out_dir / f"{name}.json").write_text(json.dumps(groups, indent=1) + "\n")
    (out_dir / f"{name}.md").write_text(text + "\n")
    return text


_ORDER = {"supervised": 0, "mean_teacher": 1, "cps": 2, "barl": 3}


def _label(spec: dict[str, Any]) -> str:
    return str(spec["method"]) if spec["without"] is None else f"{spec['method']} - {spec['without']}"


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def paired_table(rows: Sequence[dict[str, object]], reference: str = "barl") -> str:
    """Full BARL minus every other configuration at the same ratio, seed by seed (paired: same
    labelled subset and initial weights), as mean ± std over seeds, in Dice and F1 points."""
    by_key: dict[tuple[str, float, int], dict[str, Any]] = {}
    for row in rows:
        spec: dict[str, Any] = row["spec"]  # type: ignore[assignment]
        by_key[(_label(spec), float(spec["ratio"]), int(spec["seed"]))] = row["summary"]  # type: ignore[assignment]
    lines = [
        f"| {reference} minus | labelled | Δ Dice (points) | Δ lesion F1 (points) "
        f"| seeds where {reference} is better (Dice) |",
        "|---|---|---|---|---|",
    ]
    others = sorted({(k[0], k[1]) for k in by_key if k[0] != reference and k[1] < 1.0}, key=lambda o: (-o[1], o[0]))
    for label, ratio in others:
        seeds = sorted(k[2] for k in by_key if k[0] == label and k[1] == ratio and (reference, ratio, k[2]) in by_key)
        if not seeds:
            continue
        dice = np.array([by_key[(reference, ratio, s)]["dice"] - by_key[(label, ratio, s)]["dice"] for s in seeds])
        f1 = np.array(
            [by_key[(reference, ratio, s)]["lesion_f1"] - by_key[(label, ratio, s)]["lesion_f1"] for s in seeds]
        )
        lines.append(
            f"| {label} | {ratio * 100:.0f} % | {dice.mean() * 100:+.1f} ± {_std(dice) * 100:.1f} | "
            f"{f1.mean() * 100:+.1f} ± {_std(f1) * 100:.1f} | {int((dice > 0).sum())} of {len(seeds)} |"
        )
    return "\n".join(lines)
