"""Aggregating bench records into the tables ``medgate iqa bench`` prints and writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medgate_iqa.bench.items import DescriptionItem, PairItem, PerceptionItem
from medgate_iqa.bench.judge import AXES, JudgeScores

SYSTEMS = ("model", "stats", "chance")
REASONERS = ("model", "stats")


@dataclass(frozen=True)
class Scored:
    item: PerceptionItem
    score: float  # 1/0 for an answer, the expected accuracy for chance


def _groups(item: PerceptionItem) -> list[tuple[str, str]]:
    return [
        ("overall", "all"),
        ("type", item.kind),
        ("modality", item.modality),
        ("level", item.level.value),
        ("scope", item.scope),
        ("source", "real" if item.real else "synthetic"),
    ]


GROUP_ORDER = {
    "overall": ("all",),
    "type": ("yes-or-no", "what", "how"),
    "modality": ("CT", "MR"),
    "level": ("none", "mild", "severe"),
    "scope": ("general", "specific"),
    "source": ("synthetic", "real"),
}


def perception_table(records: Iterable[Scored]) -> dict[str, dict[str, dict[str, float]]]:
    """{group: {value: {"accuracy", "n"}}}."""
    sums: dict[tuple[str, str], list[float]] = {}
    for r in records:
        for key in _groups(r.item):
            sums.setdefault(key, []).append(r.score)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, values in GROUP_ORDER.items():
        out[group] = {}
        for value in values:
            got = sums.get((group, value), [])
            out[group][value] = {"accuracy": round(float(np.mean(got)), 4) if got else float("nan"), "n": len(got)}
    return out


def _axis_stats(scores: list[JudgeScores]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for axis in (*AXES, "total"):
        values = np.array([s.total if axis == "total" else s.axes()[axis] for s in scores], dtype=float)
        mean = round(float(values.mean()), 3) if len(values) else float("nan")
        std = round(float(values.std()), 3) if len(values) else float("nan")
        out[axis] = {"mean": mean, "std": std}
    out["n"] = {"mean": float(len(scores)), "std": 0.0}
    return out


def reasoning_table(
    singles: Mapping[DescriptionItem, JudgeScores], pairs: Mapping[PairItem, JudgeScores]
) -> dict[str, dict[str, Any]]:
    def subsets(
        items: Mapping[Any, JudgeScores], keys: dict[str, Callable[[Any], bool]]
    ) -> dict[str, dict[str, dict[str, float]]]:
        return {name: _axis_stats([s for item, s in items.items() if keep(item)]) for name, keep in keys.items()}

    source: dict[str, Callable[[Any], bool]] = {
        "all": lambda i: True,
        "synthetic": lambda i: not i.real,
        "real": lambda i: i.real,
    }
    grain: dict[str, Callable[[Any], bool]] = {
        "coarse": lambda i: i.grain == "coarse",
        "fine": lambda i: i.grain == "fine",
    }
    return {"single": subsets(singles, source), "pair": subsets(pairs, {**source, **grain})}


def _pct(cell: Mapping[str, float]) -> str:
    value = cell["accuracy"]
    return "-" if value != value else f"{100 * value:.1f}"


def render(results: Mapping[str, Any], console: Console) -> None:
    perception = results["perception"]
    table = Table(title="MiniMedQ perception: accuracy (%)")
    table.add_column("group")
    table.add_column("n", justify="right")
    for system in SYSTEMS:
        table.add_column({"model": "MedGate", "stats": "statistics only", "chance": "chance"}[system], justify="right")
    for group, values in GROUP_ORDER.items():
        for value in values:
            cells = [_pct(perception[s][group][value]) for s in SYSTEMS]
            label = "overall" if group == "overall" else f"{group}: {value}"
            table.add_row(label, str(perception["model"][group][value]["n"]), *cells)
    console.print(table)
    reasoning = results["reasoning"]
    table = Table(title=f"MiniMedQ reasoning: {results['config']['judge']} scores, mean ± std (0-2 each, total 0-8)")
    for column in ("task", "subset", "system", "n", *AXES, "total"):
        table.add_column(
            column.replace("_", " "), justify="left" if column in ("task", "subset", "system") else "right"
        )
    for task in ("single", "pair"):
        for subset in reasoning["model"][task]:
            for system in REASONERS:
                cell = reasoning[system][task][subset]
                shown = [f"{cell[a]['mean']:.2f} ± {cell[a]['std']:.2f}" for a in (*AXES, "total")]
                table.add_row(task, subset, system, str(int(cell["n"]["mean"])), *shown)
    console.print(table)
