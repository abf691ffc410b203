"""The mixture fit, the server's moment-matching merge, and the selector on known noise."""

from __future__ import annotations

import numpy as np
import pytest

from medgate_fl import gmm


def _two_clusters(rng: np.random.Generator, n_clean: int, n_noisy: int) -> np.ndarray:
    return np.concatenate([rng.normal(0.15, 0.05, n_clean), rng.normal(0.8, 0.08, n_noisy)])


def test_em_recovers_two_components() -> None:
    x = _two_clusters(np.random.default_rng(0), 700, 300)
    m = gmm.fit(x, iterations=30)
    assert abs(m.means[0] - 0.15) < 0.02 and abs(m.means[1] - 0.8) < 0.02
    assert abs(m.weights[0] - 0.7) < 0.03
    assert abs(np.sqrt(m.variances[0]) - 0.05) < 0.01


def test_moment_matching_equals_the_pooled_components() -> None:
    a = gmm.Mixture((0.8, 0.2), (0.1, 0.7), (0.01, 0.02))
    b = gmm.Mixture((0.4, 0.6), (0.3, 0.9), (0.02, 0.01))
    merged = gmm.aggregate([a, b], [100, 300])
    # Component 0 holds 0.25*0.8 + 0.75*0.4 = 0.5 of the pooled mass.
    assert np.isclose(merged.weights[0], 0.5)
    mass = np.array([0.25 * 0.8, 0.75 * 0.4])
    mean = (mass * [0.1, 0.3]).sum() / mass.sum()
    var = (mass * (np.array([0.01, 0.02]) + np.array([0.1, 0.3]) ** 2)).sum() / mass.sum() - mean**2
    assert np.isclose(merged.means[0], mean) and np.isclose(merged.variances[0], var)
    # A single site's mixture comes back unchanged.
    same = gmm.aggregate([a], [50])
    assert np.allclose(same.means, a.means) and np.allclose(same.variances, a.variances)


def test_components_are_ordered_clean_first() -> None:
    m = gmm.Mixture.from_lists([0.3, 0.7], [0.9, 0.1], [0.01, 0.02])
    assert m.means == (0.1, 0.9) and m.weights == (0.7, 0.3)


def test_global_selector_helps_a_site_too_noisy_to_fit_alone() -> None:
    """A site with 80 % noise cannot tell its components apart; the global mixture, pooled
    with cleaner sites, still marks its low-loss samples clean with high precision."""
    rng = np.random.default_rng(1)
    clean_sites = [_two_clusters(rng, 160, 40) for _ in range(3)]
    noisy_x = _two_clusters(rng, 20, 80)
    truth = np.r_[np.ones(20, bool), np.zeros(80, bool)]
    local = [gmm.fit(x) for x in [*clean_sites, noisy_x]]
    merged = gmm.aggregate(local, [200, 200, 200, 100])
    chosen = gmm.clean_posterior(merged, noisy_x) > 0.5
    precision = (chosen & truth).sum() / chosen.sum()
    recall = (chosen & truth).sum() / truth.sum()
    assert precision >= 0.95 and recall >= 0.9


def test_per_class_normalisation_keeps_a_high_loss_class_in_range() -> None:
    losses = np.array([0.1, 0.2, 0.3, 2.0, 2.5, 3.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert np.allclose(gmm.normalise(losses, labels), [0, 0.5, 1, 0, 0.5, 1])
    assert gmm.normalise(losses).max() == 1.0 and gmm.normalise(losses)[2] < 0.1


def test_probability_scale_means_the_same_at_every_site() -> None:
    """``1 - p(given label)`` does not depend on the site's other samples: a site whose labels
    all agree with the model stays near 0 instead of being stretched to [0, 1] by min-max."""
    agreeing = np.array([0.01, 0.05, 0.1, 0.2])
    with_noise = np.r_[agreeing, 4.0]
    scaled = gmm.normalise(agreeing, scale="probability")
    assert np.allclose(scaled, 1 - np.exp(-agreeing)) and scaled.max() < 0.2
    assert np.allclose(gmm.normalise(with_noise, scale="probability")[:4], scaled)
    assert gmm.normalise(agreeing).max() == 1.0  # min-max stretches the hardest clean sample to 1


def test_probability_scale_per_class_moves_each_class_median_to_the_site_median() -> None:
    losses = np.array([0.05, 0.1, 0.2, 0.6, 0.8, 1.0, 3.0])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    x = gmm.normalise(losses, labels, scale="probability")
    site_median = float(np.median(1 - np.exp(-losses)))
    for c in (0, 1):
        assert np.median(x[labels == c]) == pytest.approx(site_median)
    assert x.min() >= 0 and x.max() <= 1
    # order within a class is kept: the outlier of class 1 stays its highest
    assert np.argmax(x[labels == 1]) == 3
    with pytest.raises(ValueError, match="unknown loss scale"):
        gmm.normalise(losses, scale="zscore")
