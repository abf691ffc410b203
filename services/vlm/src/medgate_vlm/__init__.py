"""Reasoning: triage scores, grounded visual question answering with rationales, draft reports and DICOM SR.

This package is filled by its own issue; today it installs, imports and reports its version.
"""

__version__ = "0.1.0"
