"""``medgate iqa bench``: build MiniMedQ, answer it with the model, the statistics reader
and chance, judge the reasoning, print the tables and write the JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medgate_common.errors import InputError
from medgate_iqa.bench.baselines import StatsReader, calibrate, chance
from medgate_iqa.bench.external import real_series, run_external, run_ours
from medgate_iqa.bench.items import Bench, build_bench
from medgate_iqa.bench.judge import Judge, JudgeScores, RuleJudge
from medgate_iqa.bench.report import Scored, perception_table, reasoning_table, render
from medgate_iqa.bench.specimens import MODALITIES
from medgate_iqa.core.assess import Assessment, QualityAssessor
from medgate_iqa.core.language import answer, compare
from medgate_iqa.core.model import QualityModel, weights_dir
from medgate_iqa.core.sources import base_slices


def evaluate(
    bench: Bench, assessor: QualityAssessor, reader: StatsReader, judge: Judge, console: Console | None = None
) -> dict[str, Any]:
    """Every system on every item; the records aggregated into the result tables."""
    assessed: dict[str, Assessment] = {}
    measured = {}
    for i, (key, specimen) in enumerate(bench.specimens.items()):
        assessed[key] = assessor.assess_slices([specimen.image], specimen.modality, f"2.25.{i + 1}")
        measured[key] = reader.read(specimen.image, specimen.modality)
    records: dict[str, list[Scored]] = {"model": [], "stats": [], "chance": []}
    failures: list[str] = []
    for item in bench.perception:
        try:
            letter = answer(item.question, item.options, assessed[item.specimen]).letter
        except InputError as exc:
            letter = ""
            failures.append(f"{item.id}: {exc}")
        records["model"].append(Scored(item, float(letter == item.answer)))
        records["stats"].append(Scored(item, float(reader.answer(item, measured[item.specimen]) == item.answer)))
        records["chance"].append(Scored(item, chance(item)))
    singles: dict[str, dict[Any, JudgeScores]] = {"model": {}, "stats": {}}
    for d in bench.descriptions:
        model_text = assessed[d.specimen].report.reasoning
        stats_text = reader.describe(d.modality, measured[d.specimen])
        singles["model"][d] = judge.score(model_text, d.gold, "single")
        singles["stats"][d] = judge.score(stats_text, d.gold, "single")
    pairs: dict[str, dict[Any, JudgeScores]] = {"model": {}, "stats": {}}
    for p in bench.pairs:
        pairs["model"][p] = judge.score(compare(assessed[p.a], assessed[p.b]).text, p.gold, "pair")
        pairs["stats"][p] = judge.score(reader.compare(measured[p.a], measured[p.b])[1], p.gold, "pair")
    if failures and console is not None:
        console.print(f"[yellow]{len(failures)} questions the model could not parse, e.g. {failures[0]}")
    return {
        "perception": {name: perception_table(rows) for name, rows in records.items()},
        "reasoning": {name: reasoning_table(singles[name], pairs[name]) for name in ("model", "stats")},
        "answer_failures": failures,
    }


def run_bench(
    seed: int = 0,
    images: int = 240,
    json_out: Path | None = None,
    weights: Path | None = None,
    pairs: int | None = None,
    calibration_slices: int = 16,
    console: Console | None = None,
) -> dict[str, Any]:
    """``images`` held-out specimens per modality (3 questions and one description each) and
    ``pairs`` pairs per modality (default ``images // 4``)."""
    console = console or Console(width=max(Console().width, 150))  # one line per row, also when piped
    started = time.perf_counter()
    timings: dict[str, float] = {}
    model = QualityModel.load(weights)
    with console.status("loading held-out base slices"):
        bases = base_slices("test")
    with console.status(f"building {images} specimens per modality"):
        t = time.perf_counter()
        bench = build_bench(bases, images, seed, pairs=pairs)
        timings["build_s"] = round(time.perf_counter() - t, 1)
    with console.status("calibrating the statistics reader on train slices"):
        t = time.perf_counter()
        calibration = calibrate(MODALITIES, seed, per_modality=calibration_slices)
        timings["calibrate_s"] = round(time.perf_counter() - t, 1)
    judge = RuleJudge()
    with console.status("answering and judging"):
        t = time.perf_counter()
        results = evaluate(bench, QualityAssessor(model), StatsReader(calibration), judge, console)
        timings["evaluate_s"] = round(time.perf_counter() - t, 1)
    with console.status("real series: clean and degraded by code other than ours"):
        t = time.perf_counter()
        series, gate = real_series(), QualityAssessor(model)
        results["external"] = run_external(gate, series=series)
        results["ours_on_real"] = run_ours(gate, series=series)
        timings["external_s"] = round(time.perf_counter() - t, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    used = {(s.modality, s.real, s.source) for s in bench.specimens.values()}
    results["config"] = {
        "seed": seed,
        "images_per_modality": images,
        "pairs_per_modality": len(bench.pairs) // len(MODALITIES),
        "perception_items": len(bench.perception),
        "description_items": len(bench.descriptions),
        "pair_items": len(bench.pairs),
        "distinct_base_slices": {
            m: {kind: sum(1 for u in used if u[0] == m and u[1] == (kind == "real")) for kind in ("synthetic", "real")}
            for m in MODALITIES
        },
        "weights": str(weights or weights_dir()),
        "model": model.info.model_dump(mode="json"),
        "judge": judge.name,
        "stats_calibration": {
            m: {a.value: {"mild": round(c.mild, 4), "severe": round(c.severe, 4)} for a, c in cuts.items()}
            for m, cuts in calibration.cuts.items()
        },
        "calibration_train_slices": calibration.slices,
        "timings": timings,
        "cpus": os.cpu_count(),
    }
    render(results, console)
    render_external(results["external"], console)
    ours = [r for r in results["ours_on_real"] if r["reached"]]
    missed = ", ".join(f"{r['series']} {r['attribute']} ({r['verdict']})" for r in ours if not r["ok"])
    unreached = ", ".join(f"{r['series']} {r['attribute']}" for r in results["ours_on_real"] if not r["reached"])
    console.print(
        f"our simulators, severe, on held-out real slices: {sum(bool(r['ok']) for r in ours)}/{len(ours)} rejected"
        + (f"; missed: {missed}" if missed else "")
        + (f"; severe not reachable on: {unreached}" if unreached else "")
    )
    console.print(f"{timings['total_s']:.0f} s ({timings})")
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def render_external(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Real series: clean must pass, external severe degradations must be rejected")
    for column in ("series", "condition", "impact", "expected", "verdict", "findings", "ok"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["series"],
            r["condition"],
            f"{r['impact']:.2f}",
            r["expected"],
            r["verdict"],
            ", ".join(r["findings"]),
            "yes" if r["ok"] else "NO",
        )
    console.print(table)
    console.print(f"real-series checks passed: {sum(bool(r['ok']) for r in rows)}/{len(rows)}")
