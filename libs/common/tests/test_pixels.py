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
