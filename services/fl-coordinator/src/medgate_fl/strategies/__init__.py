"""Federated strategies on Flower's Message API, one per file."""
