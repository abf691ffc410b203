"""Radiologist review app: worklist, viewer, edit and sign-off, talking only to the gateway's REST API.

This package is filled by its own issue; today it installs, imports and reports its version.
"""

__version__ = "0.1.0"
