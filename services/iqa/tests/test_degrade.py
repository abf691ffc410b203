"""The simulators do the physics they claim, and the levels they label are measured."""

from __future__ import annotations

import numpy as np
import pytest

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity
from medgate_common.synth.study import generate_study
from medgate_iqa.core.views import to_grid
from medgate_iqa.degrade import FOCAL, OPERATORS, attributes, band, common, ct, degrade, impact, mr, verdict_of


@pytest.fixture(scope="module")
def ct_slice() -> np.ndarray:
    return to_grid(generate_study("CT", seed=7, slices=12, matrix=256).hu_or_signal[6])


@pytest.fixture(scope="module")
def mr_slice() -> np.ndarray:
    return to_grid(generate_study("MR", seed=7, slices=12, matrix=256).hu_or_signal[6])


def test_fbp_of_a_clean_sinogram_reproduces_the_slice(ct_slice: np.ndarray) -> None:
    """Our projector + ramp-filtered back-projection is a consistent pair: the reconstruction
    of noise-free data is close to the input inside the field of view."""
    mu = ct._attenuation(ct_slice)
    recon = ct._fbp(ct._project(mu), np.ones(ct.ANGLES, dtype=bool), ct_slice.shape[0])
    n = ct_slice.shape[0]
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
    inside = np.hypot(yy, xx) < 0.4 * n
    rel = np.abs(recon - mu)[inside].mean() / mu[inside].mean()
    assert rel < 0.08


def test_low_dose_noise_grows_as_photons_fall(ct_slice: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    sigmas = [float(np.std(ct.low_dose(ct_slice, s, rng)[0] - ct_slice)) for s in (0.1, 0.5, 0.9)]
    assert sigmas[0] < sigmas[1] < sigmas[2]
    assert sigmas[2] > 5 * sigmas[0]


def test_ring_artifact_is_rotationally_symmetric(ct_slice: np.ndarray) -> None:
    """A detector gain error is the same in every view, so the error image does not change
    when turned by 90 degrees (the grid and the 1-degree view set both map onto themselves)."""
    error = ct.ring(ct_slice, 0.8, np.random.default_rng(1))[0] - ct_slice
    turned = np.rot90(error)
    assert np.corrcoef(error.ravel(), turned.ravel())[0, 1] > 0.9
    # ...whereas the slice itself is not symmetric, so the check has teeth.
    assert np.corrcoef(ct_slice.ravel(), np.rot90(ct_slice).ravel())[0, 1] < 0.9


def test_fewer_views_make_more_streaks(ct_slice: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    impacts = [impact(ct_slice, ct.sparse_view(ct_slice, s, rng)[0], "CT") for s in (0.3, 0.6, 0.95)]
    assert impacts[0] < impacts[1] < impacts[2]
    assert impacts[0] < 0.05  # 84 evenly spread views are nearly complete at this matrix


def test_metal_leaves_an_implant_and_dark_bright_streaks(ct_slice: np.ndarray) -> None:
    out, where = ct.metal(ct_slice, 0.7, np.random.default_rng(3))
    assert out.max() > 2500
    assert "of the image" in where
    error = out - ct_slice
    assert error.min() < -100 and np.percentile(error, 99.5) > 100


def test_undersampling_zero_fills_phase_encode_lines(mr_slice: np.ndarray) -> None:
    out, _ = mr.undersampling(mr_slice, 0.9, np.random.default_rng(4))
    k = np.abs(np.fft.fftshift(np.fft.fft2(out)))
    # Aliasing is coherent along the phase-encode axis: the error is mostly row-direction structure.
    assert impact(mr_slice, out, "MR") > 0.2
    assert k.sum() > 0


def test_rician_noise_raises_the_background_floor(mr_slice: np.ndarray) -> None:
    out, _ = mr.noise(mr_slice, 0.8, np.random.default_rng(5))
    background = mr_slice < np.percentile(mr_slice, 5)
    assert out[background].mean() > mr_slice[background].mean()
    assert (out >= 0).all()


def test_bias_field_is_smooth_and_multiplicative(mr_slice: np.ndarray) -> None:
    out, where = mr.bias_field(mr_slice, 0.8, np.random.default_rng(6))
    tissue = mr_slice > np.percentile(mr_slice, 60)
    ratio = out[tissue] / mr_slice[tissue]
    assert ratio.max() / ratio.min() > 1.5
    assert where.startswith("brighter towards")


def test_ghosting_replicates_at_a_fraction_of_the_field_of_view(mr_slice: np.ndarray) -> None:
    out, where = mr.ghosting(mr_slice, 0.9, np.random.default_rng(7))
    assert "replicas at 1/" in where
    background = mr_slice < np.percentile(mr_slice, 20)
    assert out[background].mean() > mr_slice[background].mean() + 0.01 * mr_slice.max()


def test_pixelation_holds_each_blocks_mean_with_hard_edges(ct_slice: np.ndarray) -> None:
    class Sharp(np.random.Generator):
        """Draws that pick a block phase of 0 and no display softening."""

        def integers(self, *args: object, **kwargs: object) -> np.ndarray:  # type: ignore[override]
            return np.zeros(2, dtype=np.int64)

        def random(self, *args: object, **kwargs: object) -> float:  # type: ignore[override]
            return 1.0

    out = common.pixelate(ct_slice, 0.5, Sharp(np.random.PCG64(0)))
    b = round(1.5 + 6.5 * 0.5)  # 5 pixels on the 128 grid
    assert out.shape == ct_slice.shape
    np.testing.assert_allclose(out[:b, :b], ct_slice[:b, :b].mean(), rtol=1e-5)
    assert np.ptp(out[b : 2 * b, b : 2 * b]) == 0.0
    assert len(np.unique(out[:, 7])) <= -(-ct_slice.shape[0] // b)


def test_a_strong_spike_buries_the_anatomy_in_stripes(mr_slice: np.ndarray) -> None:
    weak, _ = mr.spike(mr_slice, 0.1, np.random.default_rng(3))
    strong, _ = mr.spike(mr_slice, 1.0, np.random.default_rng(3))
    assert impact(mr_slice, weak, "MR") < band(A.spike).mild_hi
    assert impact(mr_slice, strong, "MR") > 0.9


def test_gibbs_truncation_is_rectangular_or_elliptical(mr_slice: np.ndarray) -> None:
    # k-space corners of the kept rectangle that an ellipse leaves out: the magnitude image
    # leaks a little energy there either way, a rectangle keeps about five times more
    n = mr_slice.shape[0]
    h = int(n * (0.6 - 0.45 * 0.6) / 2)
    yy, xx = np.mgrid[:n, :n] - n // 2
    radius = (yy / h) ** 2 + (xx / h) ** 2
    corners = (np.abs(yy) < h) & (np.abs(xx) < h) & (radius > 1.3)
    kept = []
    for seed in range(6):
        out, _ = mr.gibbs(mr_slice, 0.6, np.random.default_rng(seed))
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(out)))
        kept.append(spectrum[corners].mean() / spectrum[radius < 0.5].mean() > 0.07)
    assert set(kept) == {True, False}


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_every_operator_reaches_both_levels_inside_its_measured_band(
    modality: str, ct_slice: np.ndarray, mr_slice: np.ndarray
) -> None:
    image = ct_slice if modality == "CT" else mr_slice
    rng = np.random.default_rng(11)
    for attribute in attributes(modality):
        for level in (Severity.mild, Severity.severe):
            result = degrade(image, modality, attribute, level, rng)
            assert result is not None, (attribute, level)
            out, applied = result
            b = band(attribute)
            measured = impact(image, out, modality, focal=attribute in FOCAL)
            assert applied.impact == pytest.approx(measured, abs=1e-3)
            assert b.level(measured) is level
            assert applied.location


def test_degrade_is_deterministic_in_its_rng(ct_slice: np.ndarray) -> None:
    a = degrade(ct_slice, "CT", A.streak, Severity.mild, np.random.default_rng(3))
    b = degrade(ct_slice, "CT", A.streak, Severity.mild, np.random.default_rng(3))
    assert a is not None and b is not None
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_verdict_rule() -> None:
    assert verdict_of([]) == "good"
    assert verdict_of([Severity.mild]) == "usable"
    assert verdict_of([Severity.mild, Severity.severe]) == "reject"


def test_operator_table_covers_the_issue_list() -> None:
    assert set(OPERATORS["CT"]) >= {A.noise, A.streak, A.limited_angle, A.metal, A.ring, A.motion, A.blur}
    assert set(OPERATORS["MR"]) >= {
        A.motion,
        A.ghosting,
        A.undersampling,
        A.bias_field,
        A.spike,
        A.gibbs,
        A.noise,
        A.susceptibility,
        A.blur,
    }
