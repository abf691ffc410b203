from __future__ import annotations

import numpy as np
import pytest

from medgate_common.dicom import WINDOW_PRESETS, apply_window, rescale
from medgate_common.dicom.pixels import to_uint8


def test_rescale_applies_slope_and_intercept() -> None:
    stored = np.array([0, 1024, 4095], dtype=np.uint16)
    np.testing.assert_array_equal(rescale(stored, 1.0, -1024.0), [-1024.0, 0.0, 3071.0])
    np.testing.assert_allclose(rescale(stored, 0.5, 10.0), [10.0, 522.0, 2057.5])


def test_window_follows_the_dicom_linear_function() -> None:
    c, w = WINDOW_PRESETS["abdomen"]  # 40 / 400
    # Bounds of the ramp: c - 0.5 -/+ (w - 1) / 2 = -160 and 239.
    values = np.array([-1000.0, -160.0, 39.5, 239.0, 1000.0])
    out = apply_window(values, c, w)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    assert to_uint8(out).tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(ValueError):
        apply_window(values, 0, 0.5)


def test_resize_area_averages_blocks_and_takes_any_size() -> None:
    from medgate_common.dicom.pixels import resize_area

    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 1.0, (128, 128)).astype(np.float32)
    small = resize_area(image, 64)
    np.testing.assert_allclose(small, image.reshape(64, 2, 64, 2).mean(axis=(1, 3)), atol=1e-5)
    assert small.std() < 0.6 * image.std()  # averaging four pixels halves white noise
    assert resize_area(np.ones((40, 90), dtype=np.float32), 16).shape == (16, 16)
    with pytest.raises(ValueError, match="2-D"):
        resize_area(np.zeros((2, 3, 4), dtype=np.float32), 8)


def test_synth_lesion_scale_grows_the_lesions() -> None:
    from medgate_common.synth.study import generate_study

    def mean_volume(scale: float) -> float:
        volumes = [
            t.volume_ml
            for i in range(12)
            for t in generate_study("CT", seed=3, index=i, slices=12, matrix=96, lesion_scale=scale).truth.lesions
        ]
        return sum(volumes) / len(volumes)

    assert mean_volume(2.0) > 2.0 * mean_volume(1.0)


def test_synth_lesion_contrast_scales_the_same_lesions() -> None:
    from medgate_common.synth.study import generate_study

    base = generate_study("CT", seed=5, index=2, slices=12, matrix=96, lesion_count=2)
    strong = generate_study("CT", seed=5, index=2, slices=12, matrix=96, lesion_count=2, lesion_contrast=2.0)
    assert base.truth.lesions, "the draw must hold a lesion for this test to mean anything"
    np.testing.assert_array_equal(base.lesions, strong.lesions)
    for weak, bold in zip(base.truth.lesions, strong.truth.lesions, strict=True):
        np.testing.assert_allclose(bold.contrasts, 2.0 * np.asarray(weak.contrasts), atol=0.011)
    inside = base.lesions > 0
    # Only the lesion voxels change (noise and texture are the same draws), and by more there.
    diff = np.abs(strong.hu_or_signal - base.hu_or_signal)
    assert float(diff[inside].mean()) > 15.0
    assert float(diff[~inside].mean()) < float(diff[inside].mean()) / 4
