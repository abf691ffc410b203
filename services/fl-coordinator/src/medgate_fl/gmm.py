"""The Global Sample Selector's statistics: 1-D two-component Gaussian mixtures.

A site fits a mixture to its normalised per-sample losses (:func:`normalise`; a few EM
steps started from the global mixture) and shares only the mixture's weights, means and
variances plus its sample count. The server merges the sites' mixtures component by component with
**count-weighted moment matching**: with ``gamma_k = n_k / sum(n)`` and the mass of
component ``m`` at site ``k`` being ``gamma_k * pi_km``,

* ``pi_m = sum_k gamma_k pi_km``
* ``mu_m = sum_k gamma_k pi_km mu_km / pi_m``
* ``var_m = sum_k gamma_k pi_km (var_km + mu_km^2) / pi_m - mu_m^2``

which are exactly the weight, mean and variance of component ``m`` in the pooled data if
each site's mixture described its samples exactly. (FedDiv averages the variances with
squared weights, which shrinks the pooled variance as sites are added; moment matching does
not.) Component 0 is always the low-mean one: the "clean" component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MIN_VARIANCE = 1e-4
#: How a site maps its losses into [0, 1] before the fit (:func:`normalise`).
LOSS_SCALES = ("minmax", "probability")


@dataclass(frozen=True)
class Mixture:
    weights: tuple[float, float]
    means: tuple[float, float]
    variances: tuple[float, float]

    def sorted(self) -> Mixture:
        if self.means[0] <= self.means[1]:
            return self
        w, mu, var = self.weights, self.means, self.variances
        return Mixture((w[1], w[0]), (mu[1], mu[0]), (var[1], var[0]))

    def as_lists(self) -> dict[str, list[float]]:
        return {"weights": list(self.weights), "means": list(self.means), "variances": list(self.variances)}

    @classmethod
    def from_lists(cls, weights: Sequence[float], means: Sequence[float], variances: Sequence[float]) -> Mixture:
        def pair(v: Sequence[float]) -> tuple[float, float]:
            if len(v) != 2:
                raise ValueError("a mixture has exactly two components")
            return float(v[0]), float(v[1])

        return cls(pair(weights), pair(means), pair(variances)).sorted()


def normalise(losses: FloatArray, labels: npt.NDArray[np.int64] | None = None, scale: str = "minmax") -> FloatArray:
    """Per-sample CE losses mapped into [0, 1] for the mixture.

    ``scale="minmax"``: min-max over the site, or within each class when ``labels`` is given
    (then a minority class's generally higher losses are not read as noise). The site's
    extremes set the scale, so a site with no noisy labels still spreads its hardest clean
    samples up to 1.

    ``scale="probability"``: ``1 - exp(-loss)``, the probability the model puts outside the
    given label, which means the same at every site (a site whose labels all agree with
    the model stays near 0, so the global mixture marks little of it noisy). With ``labels``
    each class is shifted so that its median sits at the site's median (clipped to [0, 1]):
    a class the model is generally less sure of is not read as noise as a whole.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if scale == "probability":
        outside: FloatArray = -np.expm1(-losses)
        if labels is None:
            return outside
        centre = float(np.median(outside))
        shifted = outside.copy()
        for c in np.unique(labels):
            sel = labels == c
            shifted[sel] += centre - float(np.median(outside[sel]))
        return np.asarray(np.clip(shifted, 0.0, 1.0), dtype=np.float64)
    if scale not in LOSS_SCALES:
        raise ValueError(f"unknown loss scale {scale!r}: one of {', '.join(LOSS_SCALES)}")
    if labels is None:
        lo, hi = float(losses.min()), float(losses.max())
        scaled: FloatArray = (losses - lo) / max(hi - lo, 1e-12)
        return scaled
    out = np.zeros_like(losses)
    for c in np.unique(labels):
        sel = labels == c
        out[sel] = normalise(losses[sel])
    return out


def _densities(m: Mixture, x: FloatArray) -> FloatArray:
    w, mu, var = (np.asarray(v, dtype=np.float64) for v in (m.weights, m.means, m.variances))
    z: FloatArray = (x[:, None] - mu[None, :]) ** 2 / var[None, :]
    dens: FloatArray = np.asarray(w[None, :] * np.exp(-0.5 * z) / np.sqrt(2.0 * np.pi * var[None, :]), dtype=np.float64)
    return dens


def responsibilities(m: Mixture, x: FloatArray) -> FloatArray:
    dens = _densities(m, np.asarray(x, dtype=np.float64)) + 1e-300
    return np.asarray(dens / dens.sum(axis=1, keepdims=True), dtype=np.float64)


def clean_posterior(m: Mixture, x: FloatArray) -> FloatArray:
    """P(low-loss component | x) for each sample."""
    return responsibilities(m.sorted(), x)[:, 0]


def default_init(x: FloatArray) -> Mixture:
    lo, hi = np.quantile(x, [0.25, 0.75])
    var = max(float(np.var(x)) / 4.0, MIN_VARIANCE)
    return Mixture((0.5, 0.5), (float(lo), float(hi) + 1e-3), (var, var))


def fit(x: FloatArray, init: Mixture | None = None, iterations: int = 10) -> Mixture:
    """A few EM steps from ``init`` (the global mixture) or a quantile start."""
    x = np.asarray(x, dtype=np.float64)
    m = (init or default_init(x)).sorted()
    for _ in range(iterations):
        r = responsibilities(m, x)
        nk = r.sum(axis=0) + 1e-12
        mu = (r * x[:, None]).sum(axis=0) / nk
        var = np.maximum((r * (x[:, None] - mu[None, :]) ** 2).sum(axis=0) / nk, MIN_VARIANCE)
        w = nk / nk.sum()
        m = Mixture((float(w[0]), float(w[1])), (float(mu[0]), float(mu[1])), (float(var[0]), float(var[1])))
    return m.sorted()


def aggregate(mixtures: Sequence[Mixture], counts: Sequence[int]) -> Mixture:
    """Count-weighted moment matching per component (see the module docstring)."""
    if not mixtures or len(mixtures) != len(counts):
        raise ValueError("one count per mixture, at least one mixture")
    gamma = np.asarray(counts, dtype=np.float64) / float(sum(counts))
    w = np.array([m.sorted().weights for m in mixtures])
    mu = np.array([m.sorted().means for m in mixtures])
    var = np.array([m.sorted().variances for m in mixtures])
    mass = gamma[:, None] * w
    pi = mass.sum(axis=0)
    mean = (mass * mu).sum(axis=0) / pi
    second = (mass * (var + mu**2)).sum(axis=0) / pi
    variance = np.maximum(second - mean**2, MIN_VARIANCE)
    return Mixture(
        (float(pi[0]), float(pi[1])), (float(mean[0]), float(mean[1])), (float(variance[0]), float(variance[1]))
    ).sorted()
