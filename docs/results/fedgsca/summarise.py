"""Summarise `medgate fl experiment` run files: per method and setting, over seeds.

Usage: python docs/results/fedgsca/summarise.py RUNS_DIR [RUNS_DIR ...]

Prints, per noise setting and method: the accuracy at the last round and the mean accuracy
over the last 10 rounds (mean ± std over seeds, and each seed's value), macro-F1,
minority-class recall, selection precision/recall, and the cost per round after the warm-up
(seconds and serialised bytes) as a ratio to FedAvg's in the same setting. The last-10
mean is steadier than one round's accuracy (a round moves the held-out accuracy by 1-3
points on 300 slices)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ORDER = ("clean", "fedavg", "fedprox", "local-gmm", "fedgsca", "fedgsca-fixed", "fedgsca-ce", "fedgsca+pcn")


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "-"


def main(dirs: list[str]) -> None:
    runs = [json.loads(p.read_text()) for d in dirs for p in sorted(Path(d).glob("*.json"))]
    groups: dict[tuple[str, float], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        p = run["params"]
        # a run with per-class loss normalisation (`--per-class-norm`) is its own row
        name = p["method"] + ("+pcn" if p.get("per_class_norm") else "")
        groups[(p["noise"], p["rate"])][name].append(run)
    for (noise, rate), by_method in sorted(groups.items()):
        print(f"## {noise} {rate:g}\n")
        print(
            "| method | seeds | accuracy, last round | accuracy, mean of last 10 rounds | per seed (last 10) "
            "| macro-F1 | minority recall | selection P / R | s/round vs FedAvg | bytes/round vs FedAvg |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        base = by_method.get("fedavg", [])

        def cost(rs: list[dict], key: str) -> float:
            return float(
                np.mean([np.mean([r[key] for r in run["rounds"][run["params"]["warmup_rounds"] :]]) for run in rs])
            )

        for method in [m for m in ORDER if m in by_method]:
            rs = sorted(by_method[method], key=lambda r: r["params"]["seed"])
            last10 = [float(np.mean([r["accuracy"] for r in run["rounds"][-10:]])) for run in rs]
            s = [run["summary"] for run in rs]
            sel = (
                _ms([x["selection-precision"] for x in s if x["selection-precision"] is not None])
                + " / "
                + _ms([x["selection-recall"] for x in s if x["selection-recall"] is not None])
            )
            ratio_s = cost(rs, "seconds") / cost(base, "seconds") if base else float("nan")
            ratio_b = cost(rs, "bytes") / cost(base, "bytes") if base else float("nan")
            print(
                f"| {method} | {','.join(str(r['params']['seed']) for r in rs)} "
                f"| {_ms([x['accuracy'] for x in s])} | {_ms(last10)} "
                f"| {' '.join(f'{v:.3f}' for v in last10)} | {_ms([x['macro-f1'] for x in s])} "
                f"| {_ms([x['minority-recall'] for x in s])} | {sel if 'gsca' in method or 'gmm' in method else '-'} "
                f"| {ratio_s:.2f} | {ratio_b:.2f} |"
            )
        print()
        print("Accuracy per round (seed by seed):\n\n```")
        for method in [m for m in ORDER if m in by_method]:
            for run in sorted(by_method[method], key=lambda r: r["params"]["seed"]):
                trace = " ".join(f"{r['accuracy']:.2f}" for r in run["rounds"])
                print(f"{method:14s} s{run['params']['seed']} {trace}")
        print("```\n")


if __name__ == "__main__":
    main(sys.argv[1:])
