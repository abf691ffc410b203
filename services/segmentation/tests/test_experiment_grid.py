"""The experiment grid's bookkeeping: which stored runs a new grid may reuse."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from medgate_seg.training.experiment import RunSpec, _cached, comparison_specs


def _store(folder: Path, spec: RunSpec, **extra: object) -> None:
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    (folder / "runs" / f"{spec.key}.json").write_text(json.dumps({"spec": asdict(spec), **extra}))


def test_a_stored_run_is_reused_only_for_the_same_spec_and_kind_of_device(tmp_path: Path) -> None:
    spec = RunSpec("barl", 0.10, 0, 2000)
    assert not _cached(spec, tmp_path)
    _store(tmp_path / "gpu", spec, device="cuda: NVIDIA H200")
    assert _cached(spec, tmp_path / "gpu", "cuda") and _cached(spec, tmp_path / "gpu", "cuda:0")
    assert not _cached(spec, tmp_path / "gpu", "cpu")
    _store(tmp_path / "old", spec)  # written before runs recorded their device: a CPU run
    assert _cached(spec, tmp_path / "old", "cpu") and not _cached(spec, tmp_path / "old", "cuda")
    _store(tmp_path / "other", RunSpec("barl", 0.10, 0, 2000, extra={"tau": 0.5}), device="cpu")
    assert not _cached(RunSpec("barl", 0.10, 0, 2000), tmp_path / "other", "cpu")  # same key, other spec


def test_the_comparison_takes_the_ratios_asked_for_and_always_the_upper_bound() -> None:
    specs = comparison_specs(100, seeds=(0,), ratios=(0.05,))
    assert {(s.method, s.ratio) for s in specs} == {
        ("supervised", 1.0), ("supervised", 0.05), ("mean_teacher", 0.05), ("cps", 0.05), ("barl", 0.05),
    }  # fmt: skip
