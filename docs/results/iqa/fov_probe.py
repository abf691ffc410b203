"""How often the committed network finds a severe degradation, by kind of base slice:
whole anatomy with air around it, against the same slices cropped so tissue fills the
field of view (enlarged 2.5 x, the centre cut out), and the real small-field MR bases.

    python docs/results/iqa/fov_probe.py [--weights DIR]

Samples are made as for training (``make_sample``: augmentation, one or two degradations at
measured levels, fresh seed 123), 150 per group, all from *training* bases. (Candidate
1.4.0's code drew the same samples here: its tight field of view was switched off for the
probe, which leaves the random draws unchanged.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from medgate_iqa.core.labels import applicable_matrix
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.sources import BaseSlice, base_slices
from medgate_iqa.core.views import stack_input
from medgate_iqa.training.data import make_sample, to_arrays


def centre_crop(b: BaseSlice, factor: float) -> BaseSlice:
    zoomed = ndimage.zoom(b.image, factor, order=1).astype(np.float32)
    n, m = b.image.shape[0], zoomed.shape[0]
    s = (m - n) // 2
    return BaseSlice(np.ascontiguousarray(zoomed[s : s + n, s : s + n]), b.modality, b.source, b.real)


def training_mr_groups(bases: list[BaseSlice]) -> dict[str, list[BaseSlice]]:
    """The training MR bases the probes compare (``small_bases_probe.py`` and
    ``coarse_probe.py`` use them too): the two small series, Colin27, synthetic MR."""
    return {
        "emri_small 0-6": [b for b in bases if "emri_small" in b.source],
        "MR_small": [b for b in bases if "MR_small" in b.source],
        "Colin27": [b for b in bases if "ch2" in b.source],
        "synthetic MR": [b for b in bases if not b.real and b.modality == "MR"],
    }


def severe_found(model: QualityModel, pool: list[BaseSlice], count: int = 150, seed: int = 123) -> tuple[float, ...]:
    """``count`` fresh samples of ``pool`` (``make_sample``, ``seed``): the share of severe
    degradations called severe, called at all, and the slice verdict accuracy."""
    rng = np.random.default_rng(seed)
    arrays = to_arrays([make_sample(pool[int(rng.integers(len(pool)))], rng) for _ in range(count)])
    out = model.backend.infer({"image": stack_input(arrays.x.astype(np.float32), arrays.modality)}).outputs
    called = out["severity"].argmax(-1)
    severe = (arrays.levels == 2) & applicable_matrix()[arrays.modality]
    exact = ((called == 2) & severe).sum() / severe.sum()
    found = ((called > 0) & severe).sum() / severe.sum()
    verdict = (out["verdict"].argmax(-1) == arrays.verdict).mean()
    return float(exact), float(found), float(verdict)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    model = QualityModel.load(args.weights) if args.weights else QualityModel.load()
    shared = training_mr_groups(base_slices("train"))
    synth, colin = shared["synthetic MR"], shared["Colin27"]
    groups = {
        "synthetic MR, whole": synth,
        "synthetic MR, cropped 2.5x": [centre_crop(b, 2.5) for b in synth],
        "Colin27, whole": colin,
        "Colin27, cropped 2.5x": [centre_crop(b, 2.5) for b in colin],
        "emri_small 0-6 (64x64 crops)": shared["emri_small 0-6"],
        "MR_small (64x64)": shared["MR_small"],
    }
    print("| bases | severe found as severe | severe found at all | slice verdict accuracy |")
    print("|---|---|---|---|")
    for name, pool in groups.items():
        exact, found, verdict = severe_found(model, pool)
        print(f"| {name} | {exact:.0%} | {found:.0%} | {verdict:.0%} |")


if __name__ == "__main__":
    main()
