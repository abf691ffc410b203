"""Lesion segmentation: BARL semi-supervised training and baselines, inference, lesion post-processing and DICOM SEG.

This package is filled by its own issue; today it installs, imports and reports its version.
"""

__version__ = "0.1.0"
