"""Benchmark ``medgate synth`` against the cost of merely writing the same files.

Baseline: pydicom writing the same 64 slices of the same pixel data with the same headers
(``write_series`` alone). The ratio says how much the phantom, lesions and image formation
cost on top of the unavoidable DICOM I/O. Run:

    .venv/bin/python benchmarks/bench_synth.py [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from medgate_common.synth import generate_study, write_dataset
from medgate_common.synth.dicom_writer import write_series


def run(modality: str, repeats: int, slices: int, matrix: int) -> dict[str, object]:
    full: list[float] = []
    generate: list[float] = []
    write_only: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            t0 = time.perf_counter()
            study = generate_study(modality, seed=100 + r, index=0, slices=slices, matrix=matrix)
            t1 = time.perf_counter()
            write_dataset(study, Path(tmp) / f"full-{r}")
            t2 = time.perf_counter()
            write_series(study.header, study.stored, study.grid.origin, Path(tmp) / f"base-{r}")
            t3 = time.perf_counter()
            full.append(t2 - t0)
            generate.append(t1 - t0)
            write_only.append(t3 - t2)

    def stats(xs: list[float]) -> dict[str, float]:
        return {"mean_s": statistics.mean(xs), "std_s": statistics.stdev(xs) if len(xs) > 1 else 0.0}

    return {
        "modality": modality,
        "slices": slices,
        "matrix": matrix,
        "repeats": repeats,
        "synth_total": stats(full),
        "synth_generate_only": stats(generate),
        "baseline_pydicom_write": stats(write_only),
        "ratio_total_to_baseline": statistics.mean(full) / statistics.mean(write_only),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [run(m, args.repeats, args.slices, args.matrix) for m in ("CT", "MR")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'modality':8} {'synth total (s)':>18} {'generate (s)':>16} {'baseline write (s)':>20} {'ratio':>6}")
    for row in rows:
        t, g, b = row["synth_total"], row["synth_generate_only"], row["baseline_pydicom_write"]
        print(
            f"{row['modality']:8} {t['mean_s']:9.3f} ± {t['std_s']:.3f}  {g['mean_s']:8.3f} ± {g['std_s']:.3f}"  # type: ignore[index]
            f"  {b['mean_s']:12.3f} ± {b['std_s']:.3f}  {row['ratio_total_to_baseline']:5.2f}x"  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
