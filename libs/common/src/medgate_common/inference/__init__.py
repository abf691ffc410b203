"""Models behind one small interface; serving code never imports torch."""

from medgate_common.inference.backend import InferenceResult, ModelBackend, TensorSpec
from medgate_common.inference.onnx import OnnxRuntimeBackend

__all__ = ["InferenceResult", "ModelBackend", "OnnxRuntimeBackend", "TensorSpec"]
