"""``medgate iqa train``: generate samples, train :class:`QualityNet`, export ONNX, write the card.

Reproducible from ``--seed``: data generation, initialisation and batch order all derive
from it. Class-balanced losses: severity cross-entropy per attribute (weighted, since "none"
dominates) plus verdict cross-entropy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medgate_iqa.core.labels import ATTRIBUTES, MODALITY_INDEX, SEVERITIES, VERDICTS, applicable_matrix
from medgate_iqa.core.sources import Split
from medgate_iqa.core.views import stack_input
from medgate_iqa.training.data import DATA_VERSION, Arrays, generate, to_arrays
from medgate_iqa.training.network import QualityNet
from medgate_ml.export import export_onnx


@dataclass(frozen=True)
class TrainConfig:
    samples: int = 12000
    epochs: int = 14
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    width: int = 16
    workers: int = 2


def _mask() -> torch.Tensor:
    """(modalities, attributes): 1 where the attribute applies to the modality."""
    return torch.from_numpy(applicable_matrix().astype(np.float32))


def fit(data: Arrays, config: TrainConfig, log: bool = True, monitor: Arrays | None = None) -> QualityNet:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = QualityNet(width=config.width)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = config.epochs * int(np.ceil(len(data.x) / config.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    weight = torch.tensor([1.0, 3.0, 3.0])
    sev_loss = nn.CrossEntropyLoss(weight=weight, reduction="none")
    verdict_loss = nn.CrossEntropyLoss()
    mask = _mask()
    onehot = torch.eye(len(MODALITY_INDEX))
    for epoch in range(config.epochs):
        order = rng.permutation(len(data.x))
        net.train()
        total, started = 0.0, time.perf_counter()
        for i in range(0, len(order), config.batch):
            idx = order[i : i + config.batch]
            x = torch.from_numpy(data.x[idx].astype(np.float32))
            mod = torch.from_numpy(data.modality[idx])
            levels = torch.from_numpy(data.levels[idx])
            verdict = torch.from_numpy(data.verdict[idx])
            sev, ver = net.logits(x, onehot[mod])
            per = sev_loss(sev.reshape(-1, len(SEVERITIES)), levels.reshape(-1)).view(levels.shape)
            m = mask[mod]
            loss = (per * m).sum() / m.sum() + verdict_loss(ver, verdict)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            seconds = time.perf_counter() - started
            watch = f" monitor {evaluate(net, monitor)}" if monitor is not None else ""
            line = f"epoch {epoch + 1}/{config.epochs} loss {total / len(order):.4f} ({seconds:.0f} s)"
            print(line + watch, flush=True)
    return net.eval()


def predict(net: QualityNet, data: Arrays, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities in batches (a whole training set at once does not fit in memory)."""
    onehot = torch.eye(len(MODALITY_INDEX))
    sev_out, ver_out = [], []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(data.x), batch):
            x = torch.from_numpy(data.x[i : i + batch].astype(np.float32))
            sev, ver = net(x, onehot[torch.from_numpy(data.modality[i : i + batch])])
            sev_out.append(sev.numpy())
            ver_out.append(ver.numpy())
    return np.concatenate(sev_out), np.concatenate(ver_out)


def evaluate(net: QualityNet, data: Arrays) -> dict[str, float]:
    """Slice-level accuracy of the severity head (applicable attributes) and the verdict."""
    sev, ver = predict(net, data)
    mask = _mask()[torch.from_numpy(data.modality)].numpy().astype(bool)
    pred = sev.argmax(-1)
    present = data.levels > 0
    return {
        "severity_accuracy": round(float((pred == data.levels)[mask].mean()), 4),
        "presence_recall": round(float(((pred > 0) & present)[mask].sum() / max(1, (present & mask).sum())), 4),
        "presence_precision": round(float(((pred > 0) & present)[mask].sum() / max(1, ((pred > 0) & mask).sum())), 4),
        "verdict_accuracy": round(float((ver.argmax(-1) == data.verdict).mean()), 4),
    }


class _Exported(nn.Module):
    """The ONNX signature: one input ``image`` of shape (B, 2 + M, G, G), the two views then
    one constant plane per modality (one-hot), so the file needs a single tensor."""

    def __init__(self, net: QualityNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        modality = x[:, 2:, 0, 0]
        severity, verdict = self.net(x[:, :2], modality)
        return severity, verdict


def _arrays(split: Split, count: int, seed: int, workers: int, cache: Path | None) -> Arrays:
    """Generated samples as arrays, kept in ``cache`` (not in the weights folder) so that a
    crashed or repeated run does not generate them again."""
    path = cache / f"iqa-{split}-{count}-{seed}-{DATA_VERSION}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return Arrays(z["x"], z["modality"], z["levels"], z["verdict"])
    arrays = to_arrays(generate(split, count, seed, workers))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=arrays.x, modality=arrays.modality, levels=arrays.levels, verdict=arrays.verdict)
    return arrays


def train(config: TrainConfig, out: Path, version: str, cache: Path | None = None) -> dict[str, object]:
    started = time.perf_counter()
    train_arrays = _arrays("train", config.samples, config.seed, config.workers, cache)
    test_arrays = _arrays("test", max(600, config.samples // 10), config.seed + 10_000, config.workers, cache)
    generated = time.perf_counter() - started
    monitor = _arrays("train", 600, config.seed + 20_000, config.workers, cache)
    net = fit(train_arrays, config, monitor=monitor)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "quality.pt")
    onnx_path = out / "quality.onnx"
    example = torch.from_numpy(stack_input(test_arrays.x[:4].astype(np.float32), test_arrays.modality[:4]))
    check = torch.from_numpy(stack_input(test_arrays.x[4:12].astype(np.float32), test_arrays.modality[4:12]))
    report = export_onnx(
        _Exported(net),
        example,
        onnx_path,
        input_name="image",
        output_names=("severity", "verdict"),
        check_inputs=[check],
    )
    metrics = {"train": evaluate(net, train_arrays), "test": evaluate(net, test_arrays)}
    card = {
        "name": "medgate-iqa-quality",
        "version": version,
        "sha256": report.sha256,
        "onnx_max_abs_diff": report.max_abs_diff,
        "attributes": [a.value for a in ATTRIBUTES],
        "severities": [s.value for s in SEVERITIES],
        "verdicts": [v.value for v in VERDICTS],
        "modalities": list(MODALITY_INDEX),
        "config": asdict(config),
        "data_version": DATA_VERSION,
        "train_samples": len(train_arrays.x),
        "test_samples": len(test_arrays.x),
        "metrics": metrics,
        "generate_seconds": round(generated, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "quality.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
