"""The global model's export: ONNX Runtime agrees with torch, the card describes the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from medgate_common.storage import sha256_file
from medgate_fl import data
from medgate_fl.global_model import CARD, ONNX, WEIGHTS, export_global_model
from medgate_fl.task import build_model


def test_exported_onnx_matches_torch_and_the_card_describes_it(tmp_path: Path) -> None:
    model = build_model(4, seed=3)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    run_config = {"strategy": "fedgsca", "num-server-rounds": 2, "task": "multiclass"}
    card = export_global_model(model.state_dict(), "multiclass", tmp_path, run_config=run_config, rounds=2,
                               metrics={"accuracy": 0.5, "macro-f1": 0.25})  # fmt: skip

    x = torch.from_numpy(np.random.default_rng(1).random((5, 1, data.SIZE, data.SIZE), dtype=np.float32))
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(tmp_path / ONNX), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    assert got.shape == (5, 4)
    assert float(np.max(np.abs(got - expected))) <= 1e-4
    # the export traces torch's pool, not the no-grad strided one: one MaxPool node a stage
    ops = [node.op_type for node in onnx.load(str(tmp_path / ONNX)).graph.node]
    assert ops.count("MaxPool") == 3 and "Slice" not in ops

    saved = torch.load(tmp_path / WEIGHTS)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    on_disk = json.loads((tmp_path / CARD).read_text())
    assert on_disk == card
    assert card["sha256"] == sha256_file(tmp_path / ONNX)
    assert card["files"][WEIGHTS]["sha256"] == sha256_file(tmp_path / WEIGHTS)
    assert card["classes"] == list(data.CLASSES) and card["rounds"] == 2 and card["strategy"] == "fedgsca"
    assert card["run_config"] == run_config
    assert card["held_out_metrics"] == {"accuracy": 0.5, "macro-f1": 0.25}
    assert card["onnx_torch_max_abs_diff"] <= 1e-4
