"""The class-balanced DPR probe: BARL, 10 % labels, one seed, 1,000 iterations, two variants
run side by side. Needs ``balanced-pseudo.patch`` applied (it adds ``Hyper.pseudo_balance``).

    python docs/results/barl/probe-2026-11-26/run_probe.py 0 runs/barl-probe
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from medgate_seg.training.experiment import RunSpec, run_one

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 0
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("runs/barl-probe")
VARIANTS = {"bal1": {"pseudo_balance": 1.0}, "bal1tau5": {"pseudo_balance": 1.0, "tau": 0.5}}


def run(item: tuple[str, dict[str, float]]) -> None:
    name, extra = item
    row = run_one(RunSpec("barl", 0.10, SEED, 1000, extra=extra), OUT / name)
    summary = row["summary"]
    assert isinstance(summary, dict)
    print(name, SEED, {k: round(summary[k], 3) for k in ("dice", "lesion_f1")}, row["train_seconds"], flush=True)


if __name__ == "__main__":
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(run, VARIANTS.items()))
