"""Models behind one small interface; serving code never imports torch."""

from medgate_common.inference.backend import InferenceResult, ModelBackend, TensorSpec, check_inputs
from medgate_common.inference.cards import check_sha256, missing_files, read_card
from medgate_common.inference.kserve import KServeV2Backend
from medgate_common.inference.onnx import OnnxRuntimeBackend

__all__ = [
    "InferenceResult",
    "KServeV2Backend",
    "ModelBackend",
    "OnnxRuntimeBackend",
    "TensorSpec",
    "check_inputs",
    "check_sha256",
    "missing_files",
    "read_card",
]
