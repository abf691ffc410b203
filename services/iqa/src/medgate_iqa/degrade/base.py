"""Shared types of the degradation simulators and the one place that says where things are."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medgate_iqa.core.views import quadrant

Image = npt.NDArray[np.float32]
Rng = np.random.Generator

__all__ = ["Image", "Rng", "quadrant"]
