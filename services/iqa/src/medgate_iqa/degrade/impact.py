"""How much a degradation changed what a reader sees: the measured quantity the severity
bands are defined on (so "mild" means a measured effect, not a knob setting).

Impact is 1 - SSIM between the clean and degraded display views, averaged over the
anatomy (a dilated foreground mask of the clean slice) so that empty background, where
SSIM compares noise with noise, does not dominate. Focal artifacts (an implant, a
susceptibility void) are scored on the worst 5 % of the SSIM map instead, since averaging
a focal defect over the whole slice would call a destroyed region "mild".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medgate_iqa.core.views import Image, display_view

FOCAL_FRACTION = 0.05


def ssim_map(a: Image, b: Image, sigma: float = 1.5) -> Image:
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = ndimage.gaussian_filter(a, sigma), ndimage.gaussian_filter(b, sigma)
    var_a = ndimage.gaussian_filter(a * a, sigma) - mu_a**2
    var_b = ndimage.gaussian_filter(b * b, sigma) - mu_b**2
    cov = ndimage.gaussian_filter(a * b, sigma) - mu_a * mu_b
    out: Image = (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).astype(
        np.float32
    )
    return out


def foreground(image: Image, modality: str) -> np.ndarray:
    view = display_view(image, modality)
    mask = view > (0.05 if modality == "CT" else 0.12)
    mask = ndimage.binary_dilation(mask, iterations=max(2, image.shape[0] // 32))
    return mask if mask.mean() > 0.05 else np.ones_like(mask)


def impact(clean: Image, degraded: Image, modality: str, focal: bool = False) -> float:
    ssim = ssim_map(display_view(clean, modality), display_view(degraded, modality))
    if focal:
        worst = np.sort(ssim.ravel())[: max(1, int(ssim.size * FOCAL_FRACTION))]
        return float(np.clip(1.0 - worst.mean(), 0.0, 1.0))
    return float(np.clip(1.0 - ssim[foreground(clean, modality)].mean(), 0.0, 1.0))
