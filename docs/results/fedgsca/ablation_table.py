"""Paired ablation table for one noise setting: FedGSCA at the defaults against each
ablation on the seeds both have, from stored run files (any number of run folders).

    python docs/results/fedgsca/ablation_table.py symmetric 0.4 docs/results/fedgsca/*-runs \\
        docs/results/fedgsca/stop26-sym40-*/runs

A run counts when every parameter but the method (and the seed) equals the setting most
ablation runs share with a FedGSCA run (FedAvg's runs carry other scoring parameters and
are left out). Cells: mean ± sample std over the seeds every method has, then the paired
difference to FedGSCA seed by seed.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ABLATIONS = ("local-gmm", "fedgsca-fixed", "fedgsca-ce")
SHOWN = ("fedgsca", *ABLATIONS)


def _setting(params: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in params.items() if k not in ("method", "seed")))


def _last10(run: dict) -> float:
    return statistics.mean(r["accuracy"] for r in run["rounds"][-10:])


def main(noise: str, rate: float, folders: list[str]) -> None:
    runs = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            run = json.loads(path.read_text())
            p = run.get("params", {})
            if p.get("noise") == noise and p.get("rate") == rate and p.get("task") == "binary":
                runs.append(run)
    ablation = [r for r in runs if r["params"]["method"] in ABLATIONS]
    with_fedgsca = {_setting(r["params"]) for r in runs if r["params"]["method"] == "fedgsca"}
    counts: dict[tuple, int] = {}
    for r in ablation:
        if _setting(r["params"]) in with_fedgsca:
            counts[_setting(r["params"])] = counts.get(_setting(r["params"]), 0) + 1
    if not counts:
        raise SystemExit("no ablation run shares its setting with a FedGSCA run")
    setting = max(counts, key=lambda k: counts[k])  # the setting most ablation runs were made at
    by: dict[str, dict[int, dict]] = {m: {} for m in SHOWN}
    for r in runs:
        m = r["params"]["method"]
        if m in by and _setting(r["params"]) == setting:
            by[m][r["params"]["seed"]] = r  # later folders win
    seeds = sorted(set.intersection(*(set(by[m]) for m in SHOWN if by[m])))
    print(f"{noise} {rate}, seeds {seeds}\n")
    print(
        "| method | accuracy, round 30 | mean of last 10 rounds | macro-F1 | minority recall | "
        "Δ round 30 vs FedGSCA, per seed | Δ last 10 |"
    )
    print("|---|---|---|---|---|---|---|")
    ref = by["fedgsca"]
    for m in SHOWN:
        if not by[m]:
            continue
        rows = [by[m][s] for s in seeds]
        final = [r["summary"]["accuracy"] for r in rows]
        last10 = [_last10(r) for r in rows]
        f1 = [r["summary"]["macro-f1"] for r in rows]
        minority = [r["summary"]["minority-recall"] for r in rows]

        def ms(v: list[float]) -> str:
            spread = statistics.stdev(v) if len(v) > 1 else 0.0
            return f"{statistics.mean(v):.3f} ± {spread:.3f}"

        d30 = [100 * (by[m][s]["summary"]["accuracy"] - ref[s]["summary"]["accuracy"]) for s in seeds]
        d10 = [100 * (_last10(by[m][s]) - _last10(ref[s])) for s in seeds]
        per = " ".join(f"{d:+.1f}" for d in d30) + f" (mean {statistics.mean(d30):+.1f})"
        print(f"| {m} | {ms(final)} | {ms(last10)} | {ms(f1)} | {ms(minority)} | {per} | {statistics.mean(d10):+.1f} |")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
