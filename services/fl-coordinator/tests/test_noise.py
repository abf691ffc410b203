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
    extreme = noise.site_noise_plan("extreme", 0.8, 10, seed=0)
    assert sum(p.kind == "symmetric" and p.rate == 0.8 for p in extreme) == 6
    assert sum(p.kind == "clean" for p in extreme) == 4
    het = noise.site_noise_plan("heterogeneous", 0.4, 10, seed=0)
    assert sum(p.kind == "clean" for p in het) == 3
    assert {p.kind for p in het} == {"clean", "symmetric", "asymmetric"}
    assert len({p.rate for p in het if p.kind != "clean"}) == 7  # every noisy site its own rate
    assert np.mean([p.rate for p in het]) == pytest.approx(0.4, abs=0.1)


def test_truth_is_never_modified() -> None:
    truth = np.arange(8) % 4
    before = truth.copy()
    noise.corrupt(truth, noise.SiteNoise("symmetric", 1.0), 4, np.random.default_rng(0))
    assert np.array_equal(truth, before)
