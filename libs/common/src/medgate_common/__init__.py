"""Shared foundation of every MedGate package.

Nothing in here imports another MedGate package: the gateway, the services and the UI all
build on this library, and meet each other only through the wire types in
:mod:`medgate_common.schemas`.
"""

__version__ = "0.1.0"
