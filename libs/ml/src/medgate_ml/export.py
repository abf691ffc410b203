"""Export a torch module to one self-contained ONNX file and prove it matches torch.

The torch 2.13 exporter defaults to the dynamo path, which writes weights to a side file
unless told otherwise; a model copied without that file is broken, so weights are always
embedded here. The parity check runs the file through ONNX Runtime on the same inputs and
fails the export when the largest absolute difference exceeds ``tolerance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from medgate_common.errors import ModelError
from medgate_common.storage import sha256_file


@dataclass(frozen=True)
class ExportReport:
    path: Path
    sha256: str
    opset: int
    max_abs_diff: float
    size_bytes: int


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    input_name: str = "input",
    output_names: Sequence[str] = ("output",),
    dynamic_batch: bool = True,
    spatial_dynamic: bool = False,
    opset: int = 18,
    tolerance: float = 1e-4,
    check_inputs: Sequence[torch.Tensor] = (),
) -> ExportReport:
    """Write ``module`` to ``path`` and check it against torch on ``example`` (+ ``check_inputs``).

    ``spatial_dynamic`` leaves every axis after the channel axis free (the outputs are
    assumed to share the input's spatial shape, as a segmentation network's do).
    """
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    axes: dict[int, str] = {0: "batch"} if dynamic_batch else {}
    if spatial_dynamic:  # every axis after the channel axis, for fully convolutional networks
        axes.update({i: f"dim{i}" for i in range(2, example.dim())})
    dynamic_axes = {input_name: axes, **dict.fromkeys(output_names, axes)} if axes else None
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
            external_data=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ModelError("exported model refers to external weight files")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in (example, *check_inputs):
        with torch.no_grad():
            reference = module(x)
        expected = reference if isinstance(reference, tuple | list) else (reference,)
        got = session.run(None, {input_name: x.numpy()})
        for e, g in zip(expected, got, strict=True):
            worst = max(worst, float(np.max(np.abs(e.numpy() - g))))
    if worst > tolerance:
        raise ModelError(f"ONNX output differs from torch by {worst:.3g} (> {tolerance:g})")
    return ExportReport(path, sha256_file(path), opset, worst, path.stat().st_size)
