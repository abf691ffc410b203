"""The committed model on real images (bench.external): clean slices pass, severely degraded
ones are rejected, including degradations made by code other than ours that training never
used (SimpleITK noise and smoothing, a SciPy motion-blur kernel, block downsampling, MONAI's
k-space Gibbs, spike and Rician noise transforms), and severe degradations from
our own simulators on held-out real slices."""

from __future__ import annotations

import pytest

from medgate_common.schemas.quality import QualityAttribute
from medgate_iqa.bench.external import EXTERNAL, measured_level, real_series, run_external, run_ours
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.model import QualityModel
from medgate_iqa.degrade import band


@pytest.fixture(scope="module")
def gate() -> QualityAssessor:
    return QualityAssessor(QualityModel.load())


@pytest.fixture(scope="module")
def rows(gate: QualityAssessor) -> list[dict[str, object]]:
    return run_external(gate)


# The committed model's measured results (docs/results/iqa.md), asserted as floors so that a
# worse model fails. The target is every row right; the model falls short on degraded real
# images (blur, pixelation and Gibbs on 64 x 64 MR are under-called).
CLEAN_PASSING = 6  # of 6
EXTERNAL_MET = 25  # of 33
OURS_MISSED = 8  # at most, of the 40 severe degradations of held-out real slices


def test_measured_levels_are_read_with_the_band_of_the_imitated_attribute() -> None:
    noise, spike = band(QualityAttribute.noise), band(QualityAttribute.spike)
    assert measured_level(noise.severe_lo, QualityAttribute.noise) == "severe"
    assert measured_level(noise.mild_lo, QualityAttribute.noise) == "mild"
    assert measured_level(0.0, QualityAttribute.noise) == "none"
    assert measured_level((noise.mild_hi + noise.severe_lo) / 2, QualityAttribute.noise) == "gap"
    # spike's band is lower than noise's: the same measurement is severe for one of them
    assert measured_level(spike.severe_lo, QualityAttribute.spike) == "severe"
    assert measured_level(spike.severe_lo, QualityAttribute.noise) != "severe"


def test_clean_real_series_pass_the_gate(rows: list[dict[str, object]]) -> None:
    clean = [r for r in rows if r["condition"] == "clean"]
    assert len(clean) == len(real_series()) == 6
    assert sum(bool(r["ok"]) for r in clean) >= CLEAN_PASSING, [r for r in clean if not r["ok"]]
    # the training-split slices, and every MR series, pass
    assert all(r["ok"] for r in clean if "train" in str(r["series"]) or r["modality"] == "MR")


def test_severe_external_degradations_are_rejected(rows: list[dict[str, object]]) -> None:
    degraded = [r for r in rows if r["condition"] != "clean"]
    per_modality = {"CT": 0, "MR": 0}
    for e in EXTERNAL.values():
        for m in e.modalities:
            per_modality[m] += 1
    assert len(degraded) == 3 * per_modality["CT"] + 3 * per_modality["MR"] == 33
    assert all(r["expected"] == "reject" for r in degraded)
    # most of them also measure as severe (the rest are listed in docs/results/iqa.md)
    assert sum(r["measured_level"] == "severe" for r in degraded) >= 28
    assert sum(bool(r["ok"]) for r in degraded) >= EXTERNAL_MET, [r for r in degraded if not r["ok"]]
    # severe noise (SimpleITK, MONAI Rician) and strong smoothing are rejected everywhere but
    # the smoothing of the 64 x 64 MR
    for r in degraded:
        if r["condition"] in ("SimpleITK AdditiveGaussianNoise", "MONAI RandRicianNoise"):
            assert r["ok"], r
        if "DiscreteGaussian" in str(r["condition"]) and "MR_small" not in str(r["series"]):
            assert r["ok"], r


def test_severe_degradations_from_our_simulators_on_held_out_real_slices(gate: QualityAssessor) -> None:
    rows = run_ours(gate)
    ours = [r for r in rows if r["reached"]]
    assert len(ours) >= 35, [r for r in rows if not r["reached"]]
    assert {r["series"] for r in ours} == {n for n in real_series() if "held out" in n}
    missed = [r for r in ours if not r["ok"]]
    assert len(missed) <= OURS_MISSED, missed


def test_the_lossy_copy_of_the_held_out_head_ct_is_rejected_for_its_compression(gate: QualityAssessor) -> None:
    """pydicom's 693_J2KI is a 339:1 lossy copy of 693_J2KR (its header says so); the gate
    reads that from the header and rejects it, and passes the lossless original."""
    from medgate_common.samples import locate

    lossy = gate.assess_series([locate("693_J2KI.dcm")]).report
    assert lossy.verdict.value == "reject"
    assert lossy.findings[0].attribute is QualityAttribute.compression
    assert lossy.findings[0].severity.value == "severe"
    assert "JPEG 2000 at 339:1" in lossy.findings[0].location
    assert "lossy compression" in lossy.reasoning
    original = gate.assess_series([locate("693_J2KR.dcm")]).report
    assert original.verdict.value in ("good", "usable")
    assert QualityAttribute.compression not in {f.attribute for f in original.findings}
