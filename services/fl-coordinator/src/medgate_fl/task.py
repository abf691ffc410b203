"""The triage network and a site's local work: prediction, training, evaluation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)``, with a faster path where no gradient is needed.

    Training calls torch's ``max_pool2d``. A forward pass without autograd (prediction,
    the site's BatchNorm calibration, evaluation) takes two elementwise maxima over strided
    views instead: the same values, bit for bit (a maximum is exact in any order; an odd
    last row or column is dropped, as there), without the argmax indices torch computes
    for a backward pass that will not come. On one CPU thread a whole-site pass (120 key
    slices) takes about 120 ms this way against 170 with torch's pool, which the profiler
    puts at about 40 % of that pass; with a gradient the strided version is
    the slower one (its backward scatters into zeros), hence the two paths. An export
    (tracing, ONNX) takes torch's, so the served graph has a MaxPool node, not slices."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tracing = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call,unused-ignore]
        if x.requires_grad or tracing or torch.onnx.is_in_onnx_export():
            return functional.max_pool2d(x, 2)  # an exported graph keeps its one MaxPool node
        h, w = x.shape[-2] - x.shape[-2] % 2, x.shape[-1] - x.shape[-1] % 2
        rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class TriageNet(nn.Module):
    """Three conv stages and a linear head (about 25 k parameters) on a 64x64 key slice.

    The head reads the mean and the maximum of each feature map: a lesion covers a few
    pixels of the slice, which an average alone dilutes.
    """

    def __init__(self, classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), MaxPool2x2()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(x)
        out: torch.Tensor = self.head(torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1))
        return out


#: The smallest minibatch that trains: BatchNorm needs two samples a step.
MIN_BATCH = 2


def checked_batch(size: int) -> int:
    """``size`` if a site can train with it; a smaller one would skip every step silently."""
    if size < MIN_BATCH:
        raise ValueError(f"batch size {size}: at least {MIN_BATCH} (BatchNorm needs two samples a step)")
    return size


def build_model(classes: int, seed: int = 0) -> TriageNet:
    torch.manual_seed(seed)
    return TriageNet(classes)


@torch.no_grad()
def predict(model: nn.Module, images: npt.NDArray[np.float32], batch: int = 256) -> torch.Tensor:
    """Class probabilities, eval mode."""
    model.eval()
    x = torch.from_numpy(images)
    return torch.cat([functional.softmax(model(x[i : i + batch]), dim=1) for i in range(0, len(x), batch)])


def train_epochs(
    model: nn.Module,
    images: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    alpha: npt.NDArray[np.float32] | None,
    *,
    epochs: int,
    lr: float,
    batch: int = 32,
    proximal_mu: float = 0.0,
    seed: int = 0,
) -> float:
    """Adam on (images, targets), its state fresh each call (each round); credal loss when
    ``alpha`` is given, else cross-entropy.
    ``proximal_mu > 0`` adds FedProx's ``mu/2 ||w - w_global||^2``. Returns the last mean loss."""
    from medgate_fl.adjust import credal_loss

    if len(targets) == 0:
        return 0.0
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(images), torch.from_numpy(targets)
    a = torch.from_numpy(alpha) if alpha is not None else None
    model.train()
    last = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        total, seen = 0.0, 0
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            if len(idx) < MIN_BATCH:
                continue  # BatchNorm needs two samples
            logits = model(x[idx])
            loss = functional.cross_entropy(logits, y[idx]) if a is None else credal_loss(logits, y[idx], a[idx]).mean()
            if anchor:
                loss = loss + proximal_mu / 2 * sum(
                    ((p - g) ** 2).sum() for p, g in zip(model.parameters(), anchor, strict=True)
                )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        last = total / max(seen, 1)
    return last


def classification_metrics(pred: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and the recall of the rarest class present in ``truth``."""
    f1s, recalls = [], {}
    for c in range(classes):
        tp = float(np.sum((pred == c) & (truth == c)))
        fp = float(np.sum((pred == c) & (truth != c)))
        fn = float(np.sum((pred != c) & (truth == c)))
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1.0))
        if tp + fn > 0:
            recalls[c] = tp / (tp + fn)
    counts = np.bincount(truth, minlength=classes)
    rare = min(recalls, key=lambda c: counts[c]) if recalls else 0
    return {
        "accuracy": float(np.mean(pred == truth)) if len(truth) else 0.0,
        "macro-f1": float(np.mean(f1s)),
        "minority-recall": recalls.get(rare, 0.0),
    }


def evaluate(
    model: nn.Module, images: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], classes: int
) -> dict[str, float]:
    pred = predict(model, images).argmax(dim=1).numpy().astype(np.int64)
    return classification_metrics(pred, labels, classes)


def state_arrays(model: nn.Module) -> Mapping[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
