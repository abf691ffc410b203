"""Federated learning across hospital sites: FedGSCA rounds on Flower, site clients and the control API.

This package is filled by its own issue; today it installs, imports and reports its version.
"""

__version__ = "0.1.0"
