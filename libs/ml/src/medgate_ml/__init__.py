"""Torch side of MedGate: networks, losses, training loops and ONNX export.

Serving code never imports this package; it runs the exported ONNX files through
:mod:`medgate_common.inference`.
"""

__version__ = "0.1.0"
