"""Summarise `medgate fl experiment` run files: per method and setting, over seeds.

Usage: python docs/results/fedgsca/summarise.py [--overview] RUNS_DIR [RUNS_DIR ...]

Prints, per noise setting and method: the accuracy at the last round and the mean accuracy
over the last 10 rounds (mean ± std over seeds, and each seed's value), macro-F1,
minority-class recall, selection precision/recall, and the cost per round after the warm-up
(seconds and serialised bytes) as a ratio to FedAvg's in the same setting. The last-10
mean is steadier than one round's accuracy (a round moves the held-out accuracy by 1-3
points on 300 slices).

``--overview`` prints one line per task and noise setting instead: FedAvg, FedGSCA (at its
defaults), FedGSCA with stop 22's two-pass scoring and with the min-max scoring of stop 21
(where run), and the clean bound
of the same seeds, and FedGSCA's lead over FedAvg seed by seed.

A selecting method's row name carries its scoring when that is not today's default:
``/minmax`` (min-max within each label, the federation's BatchNorm statistics: the default
of 2026-11-27, stop 21), ``/site-norm`` (min-max over the site: the default before), and
``/site-bn-only`` or ``/probability-only`` for one of stop 22's two changes alone (any other
combination: ``/other``). A site-BN run from before its statistics and scores came from one
whole-site pass (stop 22: 32-image batches, then a second pass) adds ``/two-pass``.

The clean bound never reads the noisy labels, so a seed's clean run serves every noise
setting of that seed and task."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from medgate_fl.experiment import SCORING_BEFORE, SELECTING, Settings

SCORING = ("per_class_norm", *SCORING_BEFORE)
#: The grid's default settings, task and the selector's scoring aside (``_at_defaults``).
DEFAULTS = {k: v for k, v in asdict(Settings()).items() if k not in ("task", *SCORING)}
TAGS = tuple(
    tag + suffix
    for tag in ("", "/minmax", "/site-norm", "/site-bn-only", "/probability-only", "/other")
    for suffix in ("", "/two-pass")
    if not (suffix and tag in ("/minmax", "/site-norm", "/probability-only"))  # no site BN, one pass or two
)
ORDER = ("clean", "fedavg", "fedprox", *(f"{m}{tag}" for tag in TAGS for m in SELECTING))


def scoring_tag(params: dict) -> str:
    """The row suffix of a run's scoring ("" for today's default or a method that does not select)."""
    if params["method"] not in SELECTING:
        return ""
    two_pass = "/two-pass" if params.get("site_bn") and "site_bn_stats" not in params else ""
    return _base_tag(params) + two_pass


def _base_tag(params: dict) -> str:
    scale = params.get("loss_scale", SCORING_BEFORE["loss_scale"])
    site_bn = params.get("site_bn", SCORING_BEFORE["site_bn"])
    if not params.get("per_class_norm"):
        return "/site-norm" if (scale, site_bn) == tuple(SCORING_BEFORE.values()) else "/other"
    if scale == "probability":
        return "" if site_bn else "/probability-only"
    return "/site-bn-only" if site_bn else "/minmax"


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "-"


def _load(dirs: list[str]) -> list[dict]:
    return [json.loads(p.read_text()) for d in dirs for p in sorted(Path(d).glob("*.json"))]


def _last10(run: dict) -> float:
    return float(np.mean([r["accuracy"] for r in run["rounds"][-10:]]))


def _at_defaults(run: dict) -> bool:
    """A run at the grid's default settings (any task; normalisation judged by the caller)."""
    return all(run["params"].get(k) == v for k, v in DEFAULTS.items())


def _same_seeds(runs: dict[int, dict], seeds: list[int]) -> str:
    """Mean ± std of the last-round accuracy of ``runs`` when it holds every seed, else "-"."""
    values = [runs[s]["summary"]["accuracy"] for s in seeds if s in runs]
    return _ms(values) if len(values) == len(seeds) else "-"


def overview(dirs: list[str]) -> None:
    by: dict[tuple[str, str, float], dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    clean: dict[tuple[str, int], dict] = {}
    # the newest code version of each run at the default settings
    runs = sorted((r for r in _load(dirs) if _at_defaults(r)), key=lambda r: r["params"]["version"])
    for run in runs:
        p = run["params"]
        if p["method"] == "clean":
            clean[(p["task"], p["seed"])] = run
        elif p["method"] in ("fedavg", "fedgsca") and scoring_tag(p) in ("", "/two-pass", "/minmax"):
            by[(p["task"], p["noise"], p["rate"])][p["method"] + scoring_tag(p)][p["seed"]] = run
    print("| task | noise | rate | seeds | FedAvg | FedGSCA | FedGSCA/two-pass (same seeds) "
          "| FedGSCA/minmax (same seeds) | clean (same seeds) "
          "| FedGSCA - FedAvg, per seed | FedGSCA - FedAvg, last-10 means | FedGSCA under clean |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (task, noise, rate), methods in sorted(by.items()):
        seeds = sorted(set(methods["fedavg"]) & set(methods["fedgsca"]))
        if not seeds:  # said, not skipped: a missing row would read as a setting never planned
            print(f"| {task} | {noise} | {rate:g} | - | - | no FedGSCA run at the defaults |{' - |' * 6}")
            continue
        avg = [methods["fedavg"][s]["summary"]["accuracy"] for s in seeds]
        gsca = [methods["fedgsca"][s]["summary"]["accuracy"] for s in seeds]
        ref = [clean[(task, s)]["summary"]["accuracy"] for s in seeds if (task, s) in clean]
        lead = " ".join(f"{100 * (g - a):+.1f}" for g, a in zip(gsca, avg, strict=True))
        lead10 = " ".join(
            f"{100 * (_last10(methods['fedgsca'][s]) - _last10(methods['fedavg'][s])):+.1f}" for s in seeds
        )
        under = f"{100 * (np.mean(ref) - np.mean(gsca)):.1f}" if len(ref) == len(seeds) else "-"
        bound = _ms(ref) if len(ref) == len(seeds) else "-"
        print(f"| {task} | {noise} | {rate:g} | {','.join(map(str, seeds))} | {_ms(avg)} | {_ms(gsca)} "
              f"| {_same_seeds(methods['fedgsca/two-pass'], seeds)} | {_same_seeds(methods['fedgsca/minmax'], seeds)} "
              f"| {bound} | {lead} | {lead10} | {under} |")  # fmt: skip
    for line in warm_up_mismatches(by):
        print(line)


def warm_up_mismatches(by: dict[tuple[str, str, float], dict[str, dict[int, dict]]]) -> list[str]:
    """FedGSCA's warm-up rounds are FedAvg rounds: the same code on the same data gives the
    same held-out accuracies, round for round. A pair that differs was made by different
    code or data (a stale run file: 2026-11-27, five FedAvg files of the 40 % settings
    predated the noise-rate cap)."""
    lines = []
    for (task, noise, rate), methods in sorted(by.items()):
        for seed in sorted(set(methods["fedavg"]) & set(methods["fedgsca"])):
            gsca = methods["fedgsca"][seed]
            warm = gsca["params"]["warmup_rounds"]
            a = [r["accuracy"] for r in methods["fedavg"][seed]["rounds"][:warm]]
            g = [r["accuracy"] for r in gsca["rounds"][:warm]]
            if a != g:
                lines.append(f"WARNING: {task} {noise} {rate:g} seed {seed}: FedAvg's first {warm} rounds differ "
                             f"from FedGSCA's warm-up; the two runs come from different code or data")  # fmt: skip
    return lines


def main(dirs: list[str]) -> None:
    runs = _load(dirs)
    groups: dict[tuple[str, str, float], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        p = run["params"]
        name = p["method"] + scoring_tag(p)  # each scoring of a selecting method is its own row
        groups[(p["task"], p["noise"], p["rate"])][name].append(run)
    for (task, noise, rate), by_method in sorted(groups.items()):
        print(f"## {task}: {noise} {rate:g}\n")
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
            last10 = [_last10(run) for run in rs]
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
                print(f"{method:24s} s{run['params']['seed']} {trace}")
        print("```\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--overview"]:
        overview(sys.argv[2:])
    else:
        main(sys.argv[1:])
