"""ONNX export: one self-contained file, torch parity, served through the common backend."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from medgate_common.errors import ModelError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend
from medgate_ml.export import export_onnx


class TinySegNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(x), dim=1)


def test_export_is_one_file_and_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TinySegNet()
    example = torch.randn(1, 1, 32, 32)
    report = export_onnx(net, example, tmp_path / "tiny.onnx", check_inputs=[torch.randn(3, 1, 32, 32)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]
    assert report.max_abs_diff <= 1e-4
    assert report.sha256 == hashlib.sha256((tmp_path / "tiny.onnx").read_bytes()).hexdigest()

    backend = OnnxRuntimeBackend(tmp_path / "tiny.onnx", name="tiny", version="1")
    assert isinstance(backend, ModelBackend)
    x = torch.randn(4, 1, 32, 32)
    result = backend.infer({"input": x.numpy()})
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    assert result.outputs["output"].shape == (4, 2, 32, 32)
    np.testing.assert_allclose(result.outputs["output"], expected, atol=1e-4)
    assert result.model.sha256 == report.sha256


def test_export_fails_when_parity_does_not_hold(tmp_path: Path) -> None:
    class Noisy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2.0

    with pytest.raises(ModelError, match="differs from torch"):
        # A negative tolerance cannot be met, so the check must report the difference.
        export_onnx(Noisy(), torch.ones(1, 1, 4, 4), tmp_path / "n.onnx", tolerance=-1.0)
