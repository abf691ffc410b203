"""How often the committed network calls a severe degradation severe, per attribute, on
fresh samples of four groups of *training* MR bases (``make_sample``, seed 321, 400 per
group): the two small series (emri_small frames 0-6, MR_small), Colin27 and synthetic MR.
Cells: severe called severe / severe samples (mean measured impact).

    python docs/results/iqa/small_bases_probe.py [--weights DIR]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from fov_probe import training_mr_groups

from medgate_iqa.core.labels import ATTRIBUTES
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.sources import base_slices
from medgate_iqa.core.views import stack_input
from medgate_iqa.training.data import make_sample, to_arrays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    model = QualityModel.load(args.weights) if args.weights else QualityModel.load()
    for name, pool in training_mr_groups(base_slices("train")).items():
        rng = np.random.default_rng(321)
        samples = [make_sample(pool[int(rng.integers(len(pool)))], rng) for _ in range(400)]
        arrays = to_arrays(samples)
        feed = stack_input(arrays.x.astype(np.float32), arrays.modality)
        called = model.backend.infer({"image": feed}).outputs["severity"].argmax(-1)
        cells: dict[str, list[float]] = defaultdict(list)
        hits: dict[str, int] = defaultdict(int)
        for sample, row in zip(samples, called, strict=True):
            for applied in sample.applied:
                if applied.level.value == "severe":
                    cells[applied.attribute.value].append(applied.impact)
                    hits[applied.attribute.value] += int(row[ATTRIBUTES.index(applied.attribute)] == 2)
        line = ", ".join(f"{a} {hits[a]}/{len(v)} ({np.mean(v):.2f})" for a, v in sorted(cells.items()))
        print(f"{name}: {line}")


if __name__ == "__main__":
    main()
