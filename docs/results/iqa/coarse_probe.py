"""Does the network under-call degradations of small (64 x 64) MR because it rarely sees
small acquisitions in training? A paired fine-tuning probe, not a training recipe.

Two copies of the committed network are fine-tuned for the same steps on fresh samples
made by ``make_sample`` (seed 7). Arm "recipe" draws the bases as training does. Arm
"coarse" first re-acquires a share of the bases on a coarse matrix (anti-aliased down to
48-96 pixels, then enlarged back to the grid, the path a small real series takes through
``to_grid``); everything after that (degradation, measured level) is unchanged, so a
degradation's level is measured against the coarse image. Both arms are then scored on the
real-image rows of ``medgate iqa bench`` (other code's degradations, our simulators on
held-out slices, clean series) and on fresh samples of the small training bases.

    python docs/results/iqa/coarse_probe.py --arms recipe,coarse --out coarse-probe-1.json
    python docs/results/iqa/coarse_probe.py --arms coarse-noisy,small-real --out coarse-probe-2.json
    python docs/results/iqa/coarse_probe.py --arms per-series,per-series-50,recipe --out coarse-probe-3.json

Arms "coarse-noisy" (MR only, noise added at the coarse matrix), "small-real" (30 % of MR
samples drawn from the two 64 x 64 series) and "per-series" / "per-series-50" (a real base
drawn series first, then slice; real share 0.35 / 0.5) came after the first two. The three
outputs were made on 2026-11-27 before the gate took the CT table away
(``core.views.without_table``); run again now, the clean abdominal CT rows differ.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from fov_probe import severe_found, training_mr_groups

from medgate_common.inference import OnnxRuntimeBackend
from medgate_iqa.bench.external import run_external, run_ours
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.model import QualityModel, weights_dir
from medgate_iqa.core.sources import BaseSlice, base_slices
from medgate_iqa.core.views import GRID, to_grid
from medgate_iqa.training import data as training_data
from medgate_iqa.training.network import QualityNet
from medgate_iqa.training.train import _Exported, _mask, evaluate
from medgate_ml.export import export_onnx

SHARE = 0.3


def coarse(base: BaseSlice, rng: np.random.Generator, noisy: bool) -> BaseSlice:
    """``noisy``: MR only, Rician noise of 2-8 % of the signal added at the coarse matrix
    (a small acquisition's voxels are noisy at their own scale, then enlarged)."""
    matrix = int(rng.integers(48, 97))
    small = to_grid(base.image, matrix)
    if noisy:
        sigma = rng.uniform(0.02, 0.08) * float(np.percentile(small, 99.5))
        small = np.hypot(small + rng.normal(0, sigma, small.shape), rng.normal(0, sigma, small.shape))
        small = small.astype(np.float32)
    image = to_grid(small, GRID)
    return BaseSlice(image, base.modality, base.source + f":coarse{matrix}", base.real)


def _small_real(base: BaseSlice) -> bool:
    return "emri_small" in base.source or "MR_small" in base.source


def series_of(base: BaseSlice) -> str:
    """``real:emri_small.dcm:3`` -> ``emri_small.dcm``; volumes by file and plane."""
    parts = base.source.split(":")
    return ":".join(parts[1:3]) if parts[1].endswith(".nii.gz") and len(parts) > 3 else parts[1]


def per_series(bases: list[BaseSlice], rng: np.random.Generator, real_share: float) -> BaseSlice:
    """As ``_pick``, but a real base is drawn series first, then slice."""
    modality = "CT" if rng.random() < 0.5 else "MR"
    pool = [b for b in bases if b.modality == modality]
    real = [b for b in pool if b.real]
    if real and rng.random() < real_share:
        names = sorted({series_of(b) for b in real})
        chosen = names[int(rng.integers(len(names)))]
        members = [b for b in real if series_of(b) == chosen]
        return members[int(rng.integers(len(members)))]
    synthetic = [b for b in pool if not b.real] or pool
    return synthetic[int(rng.integers(len(synthetic)))]


def _one(args: tuple[int, int, str]) -> training_data.Sample:
    seed, index, arm = args
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    if arm.startswith("per-series"):
        base = per_series(training_data._BASES, rng, 0.5 if arm == "per-series-50" else 0.35)
    else:
        base = training_data._pick(training_data._BASES, rng, 0.35)
    if arm == "coarse" and rng.random() < SHARE:
        base = coarse(base, rng, noisy=False)
    elif arm == "coarse-noisy" and base.modality == "MR" and rng.random() < SHARE:
        base = coarse(base, rng, noisy=True)
    elif arm == "small-real" and base.modality == "MR" and rng.random() < SHARE:
        small = [b for b in training_data._BASES if _small_real(b)]
        base = small[int(rng.integers(len(small)))]
    return training_data.make_sample(base, rng)


def generate(count: int, seed: int, arm: str) -> training_data.Arrays:
    jobs = [(seed, i, arm) for i in range(count)]
    with ProcessPoolExecutor(2, initializer=training_data._init, initargs=("train",)) as pool:
        return training_data.to_arrays(list(pool.map(_one, jobs, chunksize=64)))


def finetune(data: training_data.Arrays, epochs: int, lr: float) -> QualityNet:
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    net = QualityNet(width=24)
    net.load_state_dict(torch.load(weights_dir() / "quality.pt"))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sev_loss = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0, 3.0]), reduction="none")
    verdict_loss = torch.nn.CrossEntropyLoss()
    mask, onehot = _mask(), torch.eye(2)
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(data.x))
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            x = torch.from_numpy(data.x[idx].astype(np.float32))
            mod = torch.from_numpy(data.modality[idx])
            levels = torch.from_numpy(data.levels[idx])
            sev, ver = net.logits(x, onehot[mod])
            per = sev_loss(sev.reshape(-1, 3), levels.reshape(-1)).view(levels.shape)
            m = mask[mod]
            loss = (per * m).sum() / m.sum() + verdict_loss(ver, torch.from_numpy(data.verdict[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def as_model(net: QualityNet, folder: Path) -> QualityModel:
    example = torch.rand(4, 4, GRID, GRID)
    export_onnx(
        _Exported(net), example, folder / "quality.onnx", input_name="image", output_names=("severity", "verdict")
    )
    return QualityModel(OnnxRuntimeBackend(folder / "quality.onnx", name="probe", version="0"))


def small_bases(model: QualityModel, bases: list[BaseSlice]) -> dict[str, float]:
    groups = training_mr_groups(bases)
    del groups["Colin27"]
    groups["synthetic CT"] = [b for b in bases if not b.real and b.modality == "CT"]
    return {name: round(severe_found(model, pool)[0], 3) for name, pool in groups.items()}


def score(model: QualityModel, bases: list[BaseSlice], heldout: training_data.Arrays, net: QualityNet | None) -> dict:
    gate = QualityAssessor(model)
    external = run_external(gate)
    ours = run_ours(gate)
    clean = [r for r in external if r["condition"] == "clean"]
    severe = [r for r in external if r["condition"] != "clean"]
    return {
        "clean_passed": sum(bool(r["ok"]) for r in clean),
        "clean_failed": [f"{r['series']} -> {r['verdict']} {r['findings']}" for r in clean if not r["ok"]],
        "external_rejected": sum(bool(r["ok"]) for r in severe),
        "external_missed": [f"{r['series']} / {r['condition']} -> {r['verdict']}" for r in severe if not r["ok"]],
        "ours_rejected": sum(bool(r["ok"]) for r in ours),
        "ours_rows": len(ours),
        "ours_missed": [f"{r['series']} / {r['attribute']} -> {r.get('verdict')}" for r in ours if not r["ok"]],
        "severe_found_on_training_bases": small_bases(model, bases),
        "heldout_samples": evaluate(net, heldout) if net is not None else None,
    }


def main() -> None:
    global SHARE
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--share", type=float, default=SHARE)
    parser.add_argument("--arms", default="recipe,coarse")
    parser.add_argument("--out", type=Path, default=Path("coarse-probe.json"))
    args = parser.parse_args()
    SHARE = args.share
    started = time.perf_counter()
    heldout = training_data.to_arrays(training_data.generate("test", 1600, 10_000, 2))
    arms = {arm: generate(args.samples, 7, arm) for arm in args.arms.split(",")}
    bases = base_slices("train")
    base_net = QualityNet(width=24)
    base_net.load_state_dict(torch.load(weights_dir() / "quality.pt"))
    results = {"settings": vars(args) | {"out": str(args.out)}}
    results["committed"] = score(QualityModel.load(), bases, heldout, base_net.eval())
    print("committed", json.dumps(results["committed"]), flush=True)
    for arm, arrays in arms.items():
        net = finetune(arrays, args.epochs, args.lr)
        with tempfile.TemporaryDirectory() as tmp:
            results[arm] = score(as_model(net, Path(tmp)), bases, heldout, net)
        print(arm, json.dumps(results[arm]), flush=True)
    results["seconds"] = round(time.perf_counter() - started)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
