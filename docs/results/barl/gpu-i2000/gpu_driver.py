"""What ran on the lent GPU machine (one NVIDIA H200, 16 cores) on 2026-11-27.

It is the comparison grid of ``medgate seg eval`` with ``--device cuda --workers 15`` and
one ``--ratio``, preceded by a probe that sized the iteration count to the lease:

1. Probe: 15 processes share the GPU (the grid's concurrency). Each trains one method for
   ``PROBE_N`` iterations on 16 synthetic volumes; the slowest BARL step time is kept.
2. The largest count in ``LADDER`` whose predicted BARL training time fits the budget left
   is chosen (2,000 on the first call; the second call was given ``LADDER=2000``).
3. ``write_summary(comparison_specs(iterations, ratios=RATIOS), ..., device="cuda")``,
   the code behind ``medgate seg eval``.

This is the driver tidied after the run (names, lint); the file that ran is
``gpu_driver_as_run.py.txt`` beside it, with the same logic and its own log wording (the
logs ``log-*.txt`` are that file's output). ``device_run.sh`` beside this file installed
the three missing wheels (MONAI, pydicom, nibabel) and set ``PYTHONPATH`` to the
repository's sources: the lent machine has no package index. Calls: ``bash device_run.sh 540 480`` (10 % labels), then
``RATIOS=0.05 LADDER=2000 PROBE_N=5 bash device_run.sh 340 100000`` (5 % labels, the 100 %
runs of the first call carried over and reused).
"""

import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

BUDGET = float(sys.argv[1])  # seconds for the probe and the grid together
OUT = Path(sys.argv[2])
WORKERS = int(os.environ.get("WORKERS", "15"))
DEVICE = os.environ.get("DEVICE", "cuda")
PROBE_N = int(os.environ.get("PROBE_N", "60"))
RATIOS = tuple(float(r) for r in os.environ.get("RATIOS", "0.1").split(","))
LADDER = tuple(int(x) for x in os.environ.get("LADDER", "6000,5000,4000,3000,2000,1500,1000").split(","))


def probe(job: tuple[str, int]) -> tuple[str, float]:
    """Seconds per training step of one method while the other probes share the device."""
    method, steps = job
    import torch

    torch.set_num_threads(1)
    from medgate_ml.seg.data import labelled_split, training_set
    from medgate_ml.seg.methods import Hyper
    from medgate_ml.seg.train import train_method

    train = training_set(16)
    lab, unl = labelled_split(len(train), 0.25, 0)
    labelled, unlabelled = [train[i] for i in lab], [train[i] for i in unl]
    train_method(method, labelled, unlabelled, Hyper(iterations=10), 0, device=DEVICE)  # warm-up
    start = time.perf_counter()
    train_method(method, labelled, unlabelled, Hyper(iterations=steps), 0, device=DEVICE)
    return method, (time.perf_counter() - start) / steps


def main() -> None:
    start = time.time()
    import torch

    gpu = torch.cuda.is_available() and torch.cuda.get_device_name(0)
    print("torch", torch.__version__, DEVICE, gpu, flush=True)
    k = max(1, WORKERS // 5)
    jobs = [("barl", PROBE_N)] * (2 * k)
    jobs += [(m, PROBE_N) for m in ("cps", "mean_teacher", "supervised") for _ in range(k)]
    with mp.get_context("spawn").Pool(WORKERS) as pool:
        timed = pool.map(probe, jobs)
    per: dict[str, float] = {}
    for method, seconds in timed:
        per[method] = max(per.get(method, 0.0), seconds)
    print("probe s/iter, shared:", json.dumps(per), "took", round(time.time() - start), "s", flush=True)
    left = BUDGET - (time.time() - start) - 60  # data generation and evaluation
    iterations = next((n for n in LADDER if n * per["barl"] < left), LADDER[-1])
    print("iterations", iterations, "predicted BARL s", round(iterations * per["barl"]), flush=True)
    (OUT / "probe.json").write_text(json.dumps({"s_per_iter": per, "iterations": iterations}))

    from medgate_seg.training.experiment import comparison_specs, write_summary

    specs = comparison_specs(iterations, ratios=RATIOS)
    print(write_summary(specs, OUT / f"gpu-i{iterations}", "comparison", WORKERS, DEVICE), flush=True)
    print("total", round(time.time() - start), "s")


if __name__ == "__main__":
    main()
