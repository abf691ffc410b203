"""Print the markdown tables of docs/results/iqa.md from the bench JSONs.

    python docs/results/iqa/tables.py docs/results/iqa-bench-seed{0,1,2}.json

Perception: accuracy per group, mean ± std over seeds (population std is not used: the
sample std of the three seeds' values). Reasoning: per axis, the mean over seeds of the
per-item mean ± per-item std; for the total also the range of the seeds' means. Real
images: the rows of the first file (they do not depend on the seed).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

GROUPS = [
    ("overall", "all"),
    ("type", "yes-or-no"),
    ("type", "what"),
    ("type", "how"),
    ("modality", "CT"),
    ("modality", "MR"),
    ("level", "none"),
    ("level", "mild"),
    ("level", "severe"),
    ("scope", "general"),
    ("scope", "specific"),
    ("source", "synthetic"),
    ("source", "real"),
]
AXES = ["completeness", "preciseness", "consistency", "quality_accuracy"]
SUBSETS = {"single": ["all", "synthetic", "real"], "pair": ["all", "synthetic", "real", "coarse", "fine"]}


def _ms(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    mean = statistics.mean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def perception(runs: list[dict]) -> None:
    print("| group | n | MedGate | statistics only | chance |")
    print("|---|---|---|---|---|")
    for family, group in GROUPS:
        cells = []
        for system in ("model", "stats", "chance"):
            cells.append(_ms([r["perception"][system][family][group]["accuracy"] for r in runs], 100))
        n = runs[0]["perception"]["model"][family][group]["n"]
        label = "overall" if family == "overall" else f"{family}: {group}"
        print(f"| {label} | {n} | " + " | ".join(cells) + " |")


def reasoning(runs: list[dict]) -> None:
    print("| task | subset | system | " + " | ".join(a.replace("_", " ") for a in AXES) + " | total |")
    print("|---|---|---|---|---|---|---|---|")
    for task, subsets in SUBSETS.items():
        for subset in subsets:
            for system in ("model", "stats"):
                cells = [r["reasoning"][system][task][subset] for r in runs]
                out = []
                for axis in [*AXES, "total"]:
                    mean = statistics.mean(c[axis]["mean"] for c in cells)
                    std = statistics.mean(c[axis]["std"] for c in cells)
                    out.append(f"{mean:.2f} ± {std:.2f}")
                means = [c["total"]["mean"] for c in cells]
                out[-1] += f" (seeds {min(means):.2f}–{max(means):.2f})"
                print(f"| {task} | {subset} | {system} | " + " | ".join(out) + " |")


def real_rows(run: dict) -> None:
    print("| series | condition | measured impact (level) | expected | verdict | findings |")
    print("|---|---|---|---|---|---|")
    for r in run["external"]:
        impact = "" if r["condition"] == "clean" else f"{r['impact']:.2f} ({r['measured_level']})"
        verdict = r["verdict"] + ("" if r["ok"] else " ✗")
        cells = [r["series"], r["condition"], impact, r["expected"], verdict, ", ".join(r["findings"])]
        print("| " + " | ".join(cells) + " |")
    clean = [r for r in run["external"] if r["condition"] == "clean"]
    degraded = [r for r in run["external"] if r["condition"] != "clean"]
    ours = [r for r in run["ours_on_real"] if r["reached"]]
    print(
        f"\nclean passed {sum(r['ok'] for r in clean)}/{len(clean)}; "
        f"external rejected {sum(r['ok'] for r in degraded)}/{len(degraded)} "
        f"(of those measuring severe: {sum(r['ok'] for r in degraded if r['measured_level'] == 'severe')}"
        f"/{sum(r['measured_level'] == 'severe' for r in degraded)}); "
        f"ours rejected {sum(r['ok'] for r in ours)}/{len(ours)}; missed: "
        + ", ".join(f"{r['series']} {r['attribute']} ({r['verdict']})" for r in ours if not r["ok"])
    )


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    perception(runs)
    print()
    reasoning(runs)
    print()
    real_rows(runs[0])


if __name__ == "__main__":
    main(sys.argv[1:])
