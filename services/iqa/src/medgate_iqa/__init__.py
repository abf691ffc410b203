"""MedQ-style image-quality gate: degradation simulators, quality model, gate policy and the MiniMedQ benchmark.

This package is filled by its own issue; today it installs, imports and reports its version.
"""

__version__ = "0.1.0"
