"""A site's scoring for the Global Sample Selector: BatchNorm statistics from its own images."""

from __future__ import annotations

import numpy as np
import torch

from medgate_fl.site import site_calibrated
from medgate_fl.task import build_model


def _images(seed: int, count: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 + noise * rng.standard_normal((count, 1, 64, 64))).astype(np.float32)


def test_calibration_takes_the_site_statistics_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = build_model(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = _images(0, 40, noise=0.5)  # a noisier scanner than the model was built for
    calibrated = site_calibrated(model, images, batch=8)

    first_conv, first_bn = model.features[0], calibrated.features[1]
    with torch.no_grad():
        response = first_conv(torch.from_numpy(images))
    assert torch.allclose(first_bn.running_mean, response.mean(dim=(0, 2, 3)), atol=1e-5)
    # the running variance is the average of the batches' unbiased variances
    batch_vars = torch.stack([response[i : i + 8].var(dim=(0, 2, 3)) for i in range(0, 40, 8)])
    assert torch.allclose(first_bn.running_var, batch_vars.mean(dim=0), rtol=1e-3)
    assert not calibrated.training
    for key, value in model.state_dict().items():  # the global model itself is untouched
        assert torch.equal(value, before[key]), key
    for key, value in calibrated.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, before[key]), key  # weights unchanged, statistics only


def test_calibration_skips_a_last_batch_of_one() -> None:
    """BatchNorm cannot take the statistics of one image; a trailing single image is left out."""
    model = build_model(2)
    images = _images(1, 9, noise=0.3)
    calibrated = site_calibrated(model, images, batch=8)
    with torch.no_grad():
        response = model.features[0](torch.from_numpy(images[:8]))
    assert torch.allclose(calibrated.features[1].running_mean, response.mean(dim=(0, 2, 3)), atol=1e-5)
