"""A site's scoring for the Global Sample Selector: BatchNorm statistics from its own images,
taken and used in one forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgate_fl import site as site_module
from medgate_fl.site import Scoring, Site, SiteConfig, scoring_probs, site_calibrated
from medgate_fl.task import MaxPool2x2, build_model, predict


def _images(seed: int, count: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 + noise * rng.standard_normal((count, 1, 64, 64))).astype(np.float32)


def _site(images: np.ndarray) -> Site:
    labels = np.zeros(len(images), dtype=np.int64)
    return Site(SiteConfig(site_id=0, num_sites=1, task="binary"), images, labels, labels, images[:0], labels[:0])


def test_calibration_takes_the_site_statistics_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = build_model(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = _images(0, 40, noise=0.5)  # a noisier scanner than the model was built for
    calibrated = site_calibrated(model, images)

    first_conv, first_bn = model.features[0], calibrated.features[1]
    with torch.no_grad():
        response = first_conv(torch.from_numpy(images))
    # the whole site's mean and (unbiased) variance, not an average over minibatches
    assert torch.allclose(first_bn.running_mean, response.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_bn.running_var, response.var(dim=(0, 2, 3)), rtol=1e-4)
    assert not calibrated.training
    for key, value in model.state_dict().items():  # the global model itself is untouched
        assert torch.equal(value, before[key]), key
    for key, value in calibrated.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, before[key]), key  # weights unchanged, statistics only


def test_one_pass_scores_as_the_calibrated_model_predicts() -> None:
    """The probabilities come from the calibration pass itself; they must be what the
    calibrated model predicts in eval mode, and differ from the global model's."""
    torch.manual_seed(1)
    model = build_model(2)
    images = _images(2, 30, noise=0.6)
    one_pass = scoring_probs(_site(images), model, Scoring(site_bn=True))
    two_pass = predict(site_calibrated(model, images), images)
    assert torch.allclose(one_pass, two_pass, atol=1e-4)
    assert not torch.allclose(one_pass, predict(model, images), atol=1e-2)
    assert torch.allclose(scoring_probs(_site(images), model, Scoring(site_bn=False)), predict(model, images))


def test_a_large_site_takes_its_statistics_from_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_module, "CALIBRATION_LIMIT", 16)
    model = build_model(2)
    images = _images(3, 40, noise=0.4)
    probs = scoring_probs(_site(images), model, Scoring(site_bn=True))
    assert probs.shape == (40, 2)
    assert torch.allclose(probs, predict(site_calibrated(model, images), images))
    mean = site_calibrated(model, images).features[1].running_mean
    pick = np.sort(np.random.default_rng(40).choice(40, 16, replace=False))  # the seeded sample
    with torch.no_grad():
        response = model.features[0](torch.from_numpy(images))
    assert torch.allclose(mean, response[pick].mean(dim=(0, 2, 3)), atol=1e-6)
    assert not torch.allclose(mean, response.mean(dim=(0, 2, 3)), atol=1e-6)  # not the whole site's


def test_a_site_of_one_image_keeps_the_global_statistics() -> None:
    """One study's statistics would describe its content more than its scanner: the
    global ones stay."""
    model = build_model(2)
    images = _images(4, 1, noise=0.3)
    calibrated = site_calibrated(model, images)
    assert torch.equal(calibrated.features[1].running_mean, model.features[1].running_mean)
    assert torch.allclose(scoring_probs(_site(images), model, Scoring(site_bn=True)), predict(model, images))


@pytest.mark.parametrize("shape", [(4, 16, 64, 64), (2, 3, 7, 9), (3, 1, 2, 2)])
def test_the_no_grad_pool_equals_torch_s_max_pool_bit_for_bit(shape: tuple[int, int, int, int]) -> None:
    """Prediction, calibration and evaluation take the strided-maximum path, training takes
    torch's ``max_pool2d``: the same values either way (odd rows and columns dropped), and
    the gradient path is torch's own."""
    x = torch.randn(*shape).relu()
    reference = torch.nn.MaxPool2d(2)(x)
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(x), reference)
    leaf = x.clone().requires_grad_(True)
    out = MaxPool2x2()(leaf)
    out.sum().backward()  # type: ignore[no-untyped-call]
    expected = x.clone().requires_grad_(True)
    torch.nn.MaxPool2d(2)(expected).sum().backward()  # type: ignore[no-untyped-call]
    assert torch.equal(out.detach(), reference) and torch.equal(leaf.grad, expected.grad)  # type: ignore[arg-type]
