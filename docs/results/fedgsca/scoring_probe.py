"""What the selector sees at its first round, per site, under the old and the new scoring.

Usage: OMP_NUM_THREADS=1 python docs/results/fedgsca/scoring_probe.py NOISE RATE SEED [CACHE_DIR]

Runs the 10 FedAvg rounds that FedGSCA's warm-up runs (in process, the grid's default
settings; about 4 min on this machine), then for every site prints its scanner profile, the
share of its labels that are wrong, and how often the global model's prediction matches
the *true* label (overall, and for true "absent" / "present"), once with the federation's
averaged BatchNorm statistics and once with statistics recomputed on the site's images
(:func:`medgate_fl.site.site_calibrated`). Below that, the pooled precision and recall of
the "clean" set that the first selecting round would take, for the old scoring (min-max
within each label, federation statistics) and the new default (``1 - p(label)`` with each
label's median at the site's, site statistics): each site fits its mixture from the
quantile start, as at the first query, and the server merges them."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from medgate_fl import gmm
from medgate_fl.data import site_profile
from medgate_fl.experiment import RunSpec, Settings
from medgate_fl.inprocess import federate
from medgate_fl.site import Scoring, SiteConfig, load_site, local_mixture, normalised_losses, scoring_probs
from medgate_fl.task import build_model

OLD = Scoring(per_class=True, scale="minmax", site_bn=False)
NEW = Scoring()


def main(kind: str, rate: float, seed: int, cache: Path) -> None:
    s = Settings()
    config = RunSpec("fedavg", kind, rate, seed, s).run_config()
    config["num-server-rounds"] = s.warmup_rounds
    fed = federate(config, s.sites, cache_dir=cache)
    model = build_model(2)
    model.load_state_dict(fed.result.arrays.to_torch_state_dict())
    sites = [
        load_site(SiteConfig(k, s.sites, s.per_site, s.test_count, seed, s.alpha, s.task, kind, rate, cache))
        for k in range(s.sites)
    ]
    print(f"{kind} {rate} seed {seed}: the global model after {s.warmup_rounds} FedAvg rounds")
    print("site profile  wrong-labels | federation BN: acc absent present | site BN: acc absent present")
    for k, site in enumerate(sites):
        t = site.true_labels
        cells = []
        for scoring in (OLD, NEW):
            pred = scoring_probs(site, model, scoring).argmax(dim=1).numpy()
            cells.append(f"{np.mean(pred == t):.2f} {np.mean(pred[t == 0] == 0):.2f} {np.mean(pred[t == 1] == 1):.2f}")
        print(f"{k:4d} {site_profile(k)}   {np.mean(site.labels != t):.2f}        | {cells[0]}          | {cells[1]}")
    for name, scoring in (("old (min-max, federation BN)", OLD), ("new (1 - p, site BN)", NEW)):
        probs = [scoring_probs(site, model, scoring) for site in sites]
        mixtures = [local_mixture(site, p, None, scoring) for site, p in zip(sites, probs, strict=True)]
        merged = gmm.aggregate(mixtures, [len(site.labels) for site in sites])
        kept = np.concatenate(
            [
                gmm.clean_posterior(merged, normalised_losses(site, p, scoring)) > 0.5
                for site, p in zip(sites, probs, strict=True)
            ]
        )
        right = np.concatenate([site.labels == site.true_labels for site in sites])
        tp = float(np.sum(kept & right))
        print(f"{name}: kept {kept.mean():.2f}, precision {tp / kept.sum():.3f}, recall {tp / right.sum():.3f}")


if __name__ == "__main__":
    cache_dir = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(tempfile.gettempdir()) / "flcache"
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), cache_dir)
