"""The share of wrong labels each noise setting of the grid really puts on the sites.

Usage: OMP_NUM_THREADS=1 python docs/results/fedgsca/noise_share.py [CACHE_DIR]

A noise setting's nominal rate is not the share of wrong labels: binary misses flip only
"present" labels, the extreme setting leaves 4 of 10 sites clean, and the heterogeneous
rate is an average of site rates. This rebuilds each site's labels exactly as the ClientApp
does (`site.load_site`) for the binary grid at its default settings and prints, per setting,
the pooled share of wrong labels for seeds 0, 1, 2. Site images are generated on first use
(about 30 s per seed) and cached in CACHE_DIR (default /tmp/flcache)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from medgate_fl.experiment import Settings, default_noise
from medgate_fl.site import SiteConfig, load_site


def main(cache: Path) -> None:
    s = Settings()
    for kind, rates in sorted(default_noise(s.task).items()):
        for rate in rates:
            shares = []
            for seed in range(3):
                wrong = total = 0
                for k in range(s.sites):
                    site = load_site(SiteConfig(k, s.sites, s.per_site, s.test_count, seed, s.alpha, s.task,
                                                kind, rate, cache))  # fmt: skip
                    wrong += int(np.sum(site.labels != site.true_labels))
                    total += len(site.labels)
                shares.append(wrong / total)
            print(f"{kind:13s} {rate:<5g} wrong-label share, seeds 0-2: " + " ".join(f"{v:.3f}" for v in shares))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "flcache")
