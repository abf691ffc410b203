"""Modality LUT (rescale) and VOI LUT (window/level), after PS3.3 C.11.1 and C.11.2."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: (center, width) pairs radiologists use for CT, in Hounsfield units.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
}


def rescale(stored: npt.NDArray[np.generic], slope: float = 1.0, intercept: float = 0.0) -> FloatArray:
    """Stored values to output units (HU for CT): ``stored * slope + intercept``."""
    out = stored.astype(np.float32, copy=True)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out


def apply_window(values: npt.NDArray[np.generic], center: float, width: float) -> FloatArray:
    """The DICOM LINEAR VOI function, mapped to [0, 1].

    Below ``c - 0.5 - (w - 1) / 2`` gives 0, above ``c - 0.5 + (w - 1) / 2`` gives 1, and the
    ramp between is ``((x - (c - 0.5)) / (w - 1) + 0.5)``.
    """
    if width < 1.0:
        raise ValueError("window width must be at least 1")
    x = values.astype(np.float32, copy=False)
    if width == 1.0:
        return (x > center - 0.5).astype(np.float32)
    ramp = (x - np.float32(center - 0.5)) / np.float32(width - 1.0) + np.float32(0.5)
    out: FloatArray = np.clip(ramp, 0.0, 1.0).astype(np.float32, copy=False)
    return out


def to_uint8(unit: FloatArray) -> npt.NDArray[np.uint8]:
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def resize_area(image: npt.NDArray[np.floating], size: int) -> FloatArray:
    """A 2-D image resampled to ``size x size`` by area averaging (PIL's box filter).

    Each output pixel is the mean of the input it covers, so shrinking averages noise down
    instead of aliasing it, and any input size maps the same way (a 512 slice and a 128 one
    of the same anatomy give nearly the same result).
    """
    from PIL import Image

    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"resize_area needs one 2-D image, got shape {image.shape}")
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32)).resize((size, size), Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32)
