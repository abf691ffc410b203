"""DICOM input/output: safe reading, pixel decoding, geometry and series-to-volume."""

from medgate_common.dicom.io import decode_pixels, read_dataset, require
from medgate_common.dicom.pixels import WINDOW_PRESETS, apply_window, rescale
from medgate_common.dicom.volume import Volume, load_series

__all__ = [
    "WINDOW_PRESETS",
    "Volume",
    "apply_window",
    "decode_pixels",
    "load_series",
    "read_dataset",
    "require",
    "rescale",
]
