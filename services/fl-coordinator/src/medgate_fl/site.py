"""One site's side of a round, independent of Flower's message plumbing.

A site holds its images and its (possibly noisy) labels. The true labels exist only
because the data is synthetic; they are used for nothing but the selection precision and
recall that the site reports as two scalars.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from medgate_fl import data, gmm, noise
from medgate_fl.adjust import AdaptiveThresholds, relaxation
from medgate_fl.runconfig import DEFAULTS
from medgate_fl.task import MIN_BATCH, evaluate, predict, train_epochs

FIXED_THRESHOLD = 0.95


@dataclass(frozen=True)
class SiteConfig:
    site_id: int
    num_sites: int
    per_site: int = 120
    test_count: int = 60
    seed: int = 0
    alpha: float = 1.0
    task: str = "multiclass"
    noise: str = "clean"
    noise_rate: float = 0.0
    cache_dir: Path | None = None


@dataclass(frozen=True)
class Site:
    config: SiteConfig
    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]  # what the site was given (noisy)
    true_labels: npt.NDArray[np.int64]
    test_images: npt.NDArray[np.float32]
    test_labels: npt.NDArray[np.int64]

    @property
    def classes(self) -> int:
        return data.num_classes(self.config.task)


def load_site(cfg: SiteConfig) -> Site:
    raw = data.site_data(cfg.site_id, cfg.per_site, cfg.seed, cfg.alpha, cache_dir=cfg.cache_dir)
    truth = data.task_labels(raw.labels, cfg.task)
    classes = data.num_classes(cfg.task)
    plan = noise.site_noise_plan(cfg.noise, cfg.noise_rate, cfg.num_sites, classes, cfg.seed)[cfg.site_id]
    rng = np.random.default_rng([cfg.seed, cfg.site_id, 41])
    noisy = noise.corrupt(truth, plan, classes, rng)
    test = data.held_out_data(cfg.test_count, cfg.seed, cache_dir=cfg.cache_dir)
    return Site(cfg, raw.images, noisy, truth, test.images, data.task_labels(test.labels, cfg.task))


@dataclass(frozen=True)
class Scoring:
    """How a site scores its samples for the Global Sample Selector.

    ``per_class``: normalise within each given label (see :func:`medgate_fl.gmm.normalise`).
    ``scale``: ``"minmax"`` or ``"probability"`` (:data:`medgate_fl.gmm.LOSS_SCALES`).
    ``site_bn``: score with the global model's BatchNorm statistics recomputed on the site's
    own images (:func:`site_calibrated`) instead of the federation's averaged ones.
    The defaults are the run config's (:data:`medgate_fl.runconfig.DEFAULTS`)."""

    per_class: bool = bool(DEFAULTS["per-class-norm"])
    scale: str = str(DEFAULTS["loss-scale"])
    site_bn: bool = bool(DEFAULTS["site-bn"])


#: The most images a site's calibration pass takes in its one batch (about 0.5 MB of
#: activations an image at the peak, so 1 GB); a larger site takes its statistics from a
#: seeded sample of this many.
CALIBRATION_LIMIT = 2048


def _calibrate(model: torch.nn.Module, images: npt.NDArray[np.float32]) -> tuple[torch.nn.Module, torch.Tensor | None]:
    """A copy of ``model`` carrying the BatchNorm statistics of ``images``, and its logits
    on them when the pass covered every image (else None).

    One train-mode forward pass of the whole site as a single batch: each BatchNorm layer
    normalises with the site's own mean and variance (computed on inputs that the layers
    before it already normalised the same way) and, at momentum 1, stores exactly those as
    its running statistics. The logits of that pass are therefore the calibrated model's
    predictions, so calibrating and scoring cost one pass, not two. (The stored variance is
    the unbiased one, the pass normalises with the biased one: a relative difference of
    1/n, n = images x positions of the layer, largest at the last stage's 16 x 16; for a
    site of 120 images no probability moves by more than 1e-5.) A site with more than
    :data:`CALIBRATION_LIMIT` images takes the statistics from a seeded sample and no
    logits. A site of one image keeps the global statistics: its own would be mostly that
    one study's content, not its scanner's."""
    calibrated = copy.deepcopy(model)
    if len(images) < MIN_BATCH:
        return calibrated.eval(), None
    norms = [m for m in calibrated.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for module in norms:
        module.momentum = 1.0  # running statistics := this batch's
    batch = images
    if len(images) > CALIBRATION_LIMIT:
        pick = np.random.default_rng(len(images)).choice(len(images), CALIBRATION_LIMIT, replace=False)
        batch = images[np.sort(pick)]
    calibrated.train()
    with torch.no_grad():
        logits: torch.Tensor = calibrated(torch.from_numpy(batch))
    for module, momentum in zip(norms, momenta, strict=True):
        module.momentum = momentum
    return calibrated.eval(), logits if batch is images else None


def site_calibrated(model: torch.nn.Module, images: npt.NDArray[np.float32]) -> torch.nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are those of ``images``.

    The global model's BatchNorm statistics average every site's scanner; on a site whose
    images are noisier than the federation's, the averaged statistics shift the features
    and the model misreads whole classes (a clean site's "absent" studies scored as
    "present"), which a loss-based selector then reads as label noise. Recomputing the
    statistics on the site's own images (no gradient step, the weights unchanged) scores
    the site's samples as the model sees that scanner. The copy is used for scoring only:
    local training starts from the global model itself."""
    return _calibrate(model, images)[0]


def scoring_probs(site: Site, model: torch.nn.Module, scoring: Scoring) -> torch.Tensor:
    """The class probabilities the selector and the pseudo-labels use."""
    if not scoring.site_bn:
        return predict(model, site.images)
    calibrated, logits = _calibrate(model, site.images)
    if logits is None:
        return predict(calibrated, site.images)
    return torch.nn.functional.softmax(logits, dim=1)


def normalised_losses(site: Site, probs: torch.Tensor, scoring: Scoring) -> npt.NDArray[np.float64]:
    """CE losses on the given labels from ``probs``, normalised as ``scoring`` says."""
    picked = probs[torch.arange(len(site.labels)), torch.from_numpy(site.labels)]
    losses = (-torch.log(picked.clamp_min(1e-12))).numpy().astype(np.float64)
    return gmm.normalise(losses, site.labels if scoring.per_class else None, scoring.scale)


def local_mixture(site: Site, probs: torch.Tensor, prior: gmm.Mixture | None, scoring: Scoring) -> gmm.Mixture:
    """The site's own mixture of its normalised losses, EM started from the global one."""
    return gmm.fit(normalised_losses(site, probs, scoring), init=prior)


def selection_scores(clean: npt.NDArray[np.bool_], site: Site) -> dict[str, float]:
    """Precision and recall of the "clean" set against the (synthetic) truth."""
    truly_clean = site.labels == site.true_labels
    tp = float(np.sum(clean & truly_clean))
    return {
        "selection-precision": tp / max(float(clean.sum()), 1.0),
        "selection-recall": tp / max(float(truly_clean.sum()), 1.0),
        "clean-fraction": float(clean.mean()) if len(clean) else 0.0,
    }


def fedgsca_targets(
    site: Site,
    model: torch.nn.Module,
    mixture: gmm.Mixture,
    thresholds: AdaptiveThresholds | None,
    scoring: Scoring,
    probs: torch.Tensor | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.bool_], dict[str, float]]:
    """Targets, relaxations and the kept mask for one round of FedGSCA local training.

    Clean-set samples keep their label; noisy-set samples take the model's prediction when
    it clears the class threshold (adaptive, or the fixed 0.95 when ``thresholds`` is
    None) and are dropped for this round otherwise. ``probs``: the model's predictions on
    the site's images when already known (the round's ``query.gmm`` computed them with the
    same model and scoring), else one forward pass serves both the losses and the
    pseudo-labels."""
    if probs is None:
        probs = scoring_probs(site, model, scoring)
    posterior = gmm.clean_posterior(mixture, normalised_losses(site, probs, scoring))
    clean = posterior > 0.5
    noisy_probs = probs[torch.from_numpy(~clean)]
    if thresholds is not None:
        thresholds.update(noisy_probs)
        accepted, pseudo = thresholds.select(noisy_probs)
    else:
        conf, pseudo = noisy_probs.max(dim=1)
        accepted = conf >= FIXED_THRESHOLD
    targets = site.labels.copy()
    confidence = posterior.astype(np.float32).copy()
    noisy_idx = np.flatnonzero(~clean)
    targets[noisy_idx] = pseudo.numpy()
    confidence[noisy_idx] = noisy_probs.max(dim=1).values.numpy()
    keep = clean.copy()
    keep[noisy_idx] = accepted.numpy()
    alpha = relaxation(torch.from_numpy(confidence)).numpy().astype(np.float32)
    stats = selection_scores(clean, site)
    stats["pseudo-fraction"] = float(accepted.float().mean()) if len(noisy_idx) else 0.0
    return targets, alpha, keep, stats


def train_round(
    site: Site,
    model: torch.nn.Module,
    *,
    method: str,
    epochs: int,
    lr: float,
    batch: int = 32,
    mixture: gmm.Mixture | None = None,
    thresholds: AdaptiveThresholds | None = None,
    scoring: Scoring = Scoring(),
    credal: bool = True,
    proximal_mu: float = 0.0,
    selector: str = "global",
    probs: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Local training for ``method``; returns scalar metrics.

    ``fedavg``/``fedprox``: cross-entropy on the given labels (plus the proximal term).
    ``fedgsca``: selection with ``mixture`` (the global one), or with the site's own mixture
    when ``selector == "local"``, then Client Adaptive Adjustment. ``clean``: cross-entropy
    on the true labels (the synthetic-data upper bound)."""
    if method == "fedgsca" and selector == "local":
        probs = scoring_probs(site, model, scoring)
        mixture = local_mixture(site, probs, None, scoring)
    if method == "clean":
        loss = train_epochs(model, site.images, site.true_labels, None, epochs=epochs, lr=lr, batch=batch, seed=seed)
        return {"train-loss": loss}
    if method == "fedgsca" and mixture is not None:
        targets, alpha, keep, stats = fedgsca_targets(site, model, mixture, thresholds, scoring, probs)
        loss = train_epochs(
            model, site.images[keep], targets[keep], alpha[keep] if credal else None,
            epochs=epochs, lr=lr, batch=batch, seed=seed,
        )  # fmt: skip
    else:
        stats = {}
        mu = proximal_mu if method == "fedprox" else 0.0
        loss = train_epochs(
            model, site.images, site.labels, None, epochs=epochs, lr=lr, batch=batch, proximal_mu=mu, seed=seed
        )
    return {"train-loss": loss, **stats}


def evaluate_site(site: Site, model: torch.nn.Module) -> dict[str, float]:
    return evaluate(model, site.test_images, site.test_labels, site.classes)
