"""The committed model on real images (bench.external): clean slices pass, severely degraded
ones are rejected, including degradations made by code other than ours that training never
used (SimpleITK noise and smoothing, a SciPy motion-blur kernel, block downsampling), and
severe degradations from our own simulators on held-out real slices."""

from __future__ import annotations

import numpy as np
import pytest

from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench.external import real_series, run_external
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.views import to_grid
from medgate_iqa.degrade import attributes, degrade


@pytest.fixture(scope="module")
def gate() -> QualityAssessor:
    return QualityAssessor(QualityModel.load())


@pytest.fixture(scope="module")
def rows(gate: QualityAssessor) -> list[dict[str, object]]:
    return run_external(gate)


# The committed model's measured rates (docs/results/iqa.md), asserted as floors: the target
# is every clean series passing and every severe one rejected, and the model falls short
# on real images (one held-out head CT called "severe motion"; blur on a 64 x 64 MR and a
# linear motion-blur kernel called mild). A model that does worse fails these tests.
CLEAN_PASSING = 4  # of 5
EXTERNAL_REJECTED = 15  # of 20
OURS_MISSED = 8  # at most, of 31


def test_clean_real_series_pass_the_gate(rows: list[dict[str, object]]) -> None:
    clean = [r for r in rows if r["condition"] == "clean"]
    assert len(clean) == 5
    assert sum(bool(r["ok"]) for r in clean) >= CLEAN_PASSING, [r for r in clean if not r["ok"]]
    # the two training-split slices, and every MR series, pass
    assert all(r["ok"] for r in clean if "train" in str(r["series"]) or r["modality"] == "MR")


def test_severe_external_degradations_are_rejected(rows: list[dict[str, object]]) -> None:
    degraded = [r for r in rows if r["condition"] != "clean"]
    assert len(degraded) == 20
    assert sum(bool(r["ok"]) for r in degraded) >= EXTERNAL_REJECTED, [r for r in degraded if not r["ok"]]
    # severe noise and strong smoothing from SimpleITK are rejected everywhere but the 64 x 64 MR
    for r in degraded:
        if r["condition"].startswith("SimpleITK") and "MR_small" not in str(r["series"]):
            assert r["ok"], r


def test_severe_degradations_from_our_simulators_on_held_out_real_slices(gate: QualityAssessor) -> None:
    rng = np.random.default_rng(5)
    missed, total = [], 0
    for name, (modality, slices) in real_series().items():
        if "held out" not in name:
            continue
        for attribute in attributes(modality):
            result = degrade(to_grid(slices[0]), modality, attribute, Severity.severe, rng)
            if result is None:
                continue
            total += 1
            verdict = gate.assess_slices([result[0]], modality, "1.2.3").report.verdict
            if verdict is not Verdict.reject:
                missed.append((name, attribute.value, verdict.value))
    assert total >= 25
    assert len(missed) <= OURS_MISSED, missed
