"""Label-noise injection: realised rates, the confusion map, and the site plans."""

from __future__ import annotations

import numpy as np
import pytest

from medgate_fl import noise


def test_symmetric_rate_and_uniform_targets() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 20000)
    noisy = noise.flip_symmetric(truth, 0.4, 4, rng)
    flipped = noisy != truth
    assert abs(flipped.mean() - 0.4) < 0.015
    counts = np.bincount((noisy[flipped] - truth[flipped]) % 4, minlength=4)
    assert counts[0] == 0 and np.allclose(counts[1:] / counts[1:].sum(), 1 / 3, atol=0.02)


def test_asymmetric_follows_the_confusion_map() -> None:
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(4), 5000)
    noisy = noise.corrupt(truth, noise.SiteNoise("asymmetric", 0.3), 4, rng)
    for source, target in noise.ASYMMETRIC_MAP.items():
        changed = noisy[truth == source] != source
        assert abs(changed.mean() - 0.3) < 0.02
        assert set(noisy[truth == source][changed].tolist()) == {target}
    binary = noise.corrupt(truth.clip(0, 1), noise.SiteNoise("asymmetric", 0.5), 2, rng)
    assert np.all(binary[truth == 0] == 0)  # only misses: present -> absent


def test_extreme_and_heterogeneous_plans() -> None:
    extreme = noise.site_noise_plan("extreme", 0.6, 10, 4, seed=0)
    assert sum(p.kind == "symmetric" and p.rate == 0.6 for p in extreme) == 6
    assert sum(p.kind == "clean" for p in extreme) == 4
    het = noise.site_noise_plan("heterogeneous", 0.4, 10, 4, seed=0)
    assert sum(p.kind == "clean" for p in het) == 3
    assert {p.kind for p in het} == {"clean", "symmetric", "asymmetric"}
    assert len({p.rate for p in het if p.kind != "clean"}) >= 5  # own rates, but for sites at a cap
    assert np.mean([p.rate for p in het]) == pytest.approx(0.4, abs=1e-9)


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("kind", ["symmetric", "asymmetric", "extreme", "heterogeneous"])
def test_every_label_still_points_to_its_own_class(kind: str, classes: int) -> None:
    """However high the setting's rate, at every site a label ``c`` is given more often to
    studies of class ``c`` than to studies of any other class: no site is taught the
    opposite task (a binary symmetric site at 0.68 used to be)."""
    truth = np.repeat(np.arange(classes), 20000)
    for seed in range(5):
        for rate in (0.4, 0.8):
            for k, plan in enumerate(noise.site_noise_plan(kind, rate, 10, classes, seed)):
                assert plan.kind == "clean" or 0.0 < plan.rate <= noise.rate_cap(plan.kind, classes)
                noisy = noise.corrupt(truth, plan, classes, np.random.default_rng([seed, k]))
                # given[c, l]: the fraction of class-c studies labelled l
                given = np.array([np.bincount(noisy[truth == c], minlength=classes) / 20000 for c in range(classes)])
                for label in range(classes):
                    column = given[:, label]
                    assert column.argmax() == label, (kind, rate, seed, k, plan, label, given)


def test_caps_and_the_heterogeneous_average_for_the_binary_task() -> None:
    assert noise.rate_cap("symmetric", 2) == pytest.approx(0.45)
    assert noise.rate_cap("symmetric", 4) == pytest.approx(0.70)
    assert noise.rate_cap("asymmetric", 4) == pytest.approx(0.45)  # normal <-> hypodense swap
    assert noise.rate_cap("asymmetric", 2) == pytest.approx(0.9)  # misses only
    assert {p.rate for p in noise.site_noise_plan("extreme", 0.8, 10, 2) if p.kind != "clean"} == {0.45}
    for seed in range(10):
        het = noise.site_noise_plan("heterogeneous", 0.4, 10, 2, seed)
        # what the symmetric sites cannot take, the asymmetric ones do: the average holds
        assert np.mean([p.rate for p in het]) == pytest.approx(0.4, abs=1e-9)
        assert max(p.rate for p in het if p.kind == "symmetric") <= 0.45 + 1e-12
    # when the sites have no room left, every one sits at its cap and the average falls short
    full = noise.site_noise_plan("heterogeneous", 0.8, 10, 2, 0)
    assert all(p.rate == pytest.approx(noise.rate_cap(p.kind, 2)) for p in full if p.kind != "clean")
    assert np.mean([p.rate for p in full]) == pytest.approx((4 * 0.45 + 3 * 0.9) / 10)
    # a low average: the draws overshoot and come down, still within [MIN_RATE, cap]
    for seed in range(10):
        low = [p for p in noise.site_noise_plan("heterogeneous", 0.2, 10, 2, seed) if p.kind != "clean"]
        assert sum(p.rate for p in low) == pytest.approx(2.0)
        assert all(noise.MIN_RATE <= p.rate <= noise.rate_cap(p.kind, 2) for p in low)


def test_holding_the_average() -> None:
    caps = [0.45, 0.9, 0.45]
    up = noise._hold_average([0.45, 0.5, 0.2], caps, 1.5)  # deficit 0.35 over room 0.65: 0.0 / 0.4 / 0.25
    assert up == pytest.approx([0.45, 0.5 + 0.35 * 0.4 / 0.65, 0.2 + 0.35 * 0.25 / 0.65])
    down = noise._hold_average([0.45, 0.5, 0.2], caps, 0.9)  # surplus 0.25 over room above 0.05: 0.4 / 0.45 / 0.15
    assert down == pytest.approx([0.45 - 0.25 * 0.4 / 1.0, 0.5 - 0.25 * 0.45 / 1.0, 0.2 - 0.25 * 0.15 / 1.0])
    assert sum(down) == pytest.approx(0.9)
    assert noise._hold_average([0.45, 0.9, 0.45], caps, 3.0) == pytest.approx(caps)  # no room: at the caps
    assert noise._hold_average([0.3, 0.3, 0.3], caps, 0.0) == pytest.approx([0.05] * 3)  # floor, not zero
    assert noise._hold_average([], [], 0.0) == []


def test_truth_is_never_modified() -> None:
    truth = np.arange(8) % 4
    before = truth.copy()
    noise.corrupt(truth, noise.SiteNoise("symmetric", 1.0), 4, np.random.default_rng(0))
    assert np.array_equal(truth, before)
