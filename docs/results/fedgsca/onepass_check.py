"""How far stop 23's one-pass site-BN scores are from stop 22's two-pass ones.

Usage: OMP_NUM_THREADS=1 python docs/results/fedgsca/onepass_check.py [NOISE RATE SEED]

Stop 22 recomputed a site's BatchNorm statistics by averaging those of 32-image batches
(a train-mode pass) and then predicted in eval mode (a second pass); stop 23 takes the
whole site as one batch and keeps that pass's output (:func:`medgate_fl.site.scoring_probs`).
The old way is rebuilt here (``two_pass``). The model is not a federation's: a fresh
network trained for three epochs on 40 true-labelled studies of each site, enough for
non-trivial predictions. Prints, per site, the largest and the mean difference in
probability between the two scorings, how many predicted classes differ, and for scale
the largest difference between site-BN and the federation's own statistics."""

from __future__ import annotations

import copy
import sys

import numpy as np
import torch

from medgate_fl.site import Scoring, SiteConfig, load_site, scoring_probs
from medgate_fl.task import build_model, predict, train_epochs


def two_pass(model: torch.nn.Module, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    calibrated = copy.deepcopy(model)
    for module in calibrated.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the plain average over the batches
    calibrated.train()
    x = torch.from_numpy(images)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            if len(x[i : i + batch]) >= 2:
                calibrated(x[i : i + batch])
    return predict(calibrated, images)


def main(noise: str = "heterogeneous", rate: float = 0.4, seed: int = 0) -> None:
    torch.set_num_threads(1)
    sites = [
        load_site(SiteConfig(site_id=i, num_sites=10, seed=seed, task="binary", noise=noise, noise_rate=rate))
        for i in range(10)
    ]
    model = build_model(2, seed)
    images = np.concatenate([s.images[:40] for s in sites])
    labels = np.concatenate([s.true_labels[:40] for s in sites])
    train_epochs(model, images, labels, None, epochs=3, lr=2e-3, batch=8)
    print(
        f"{noise} {rate:g} seed {seed}: site | one - two pass: max mean classes differ | site BN - federation BN: max"
    )
    for s in sites:
        old, new, fed = two_pass(model, s.images), scoring_probs(s, model, Scoring()), predict(model, s.images)
        diff = (old - new).abs()
        changed = int((old.argmax(1) != new.argmax(1)).sum())
        print(
            f"{s.config.site_id:4d} | {diff.max():.4f} {diff.mean():.4f} {changed:3d} | {(old - fed).abs().max():.3f}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], float(args[1]), int(args[2])) if args else main()
