"""The quality network behind :class:`ModelBackend`: slices in, per-attribute severity and
verdict probabilities out. The ONNX file ships in ``medgate_iqa/weights`` with its card."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medgate_common.errors import ModelError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend
from medgate_common.schemas.models import ModelInfo
from medgate_iqa.core.labels import ATTRIBUTES, MODALITY_INDEX, SEVERITIES, VERDICTS
from medgate_iqa.core.views import model_input, stack_input, to_grid, without_table

Probs = npt.NDArray[np.float32]


def weights_dir() -> Path:
    return Path(str(files("medgate_iqa") / "weights"))


@dataclass(frozen=True)
class SlicePrediction:
    severity: Probs  # (attributes, 3): p(none), p(mild), p(severe)
    verdict: Probs  # (3,): p(good), p(usable), p(reject)


class QualityModel:
    """Runs the network on slices of one modality, in batches."""

    def __init__(self, backend: ModelBackend, card: dict[str, object] | None = None) -> None:
        self.backend = backend
        self.card = card or {}
        expected = [a.value for a in ATTRIBUTES]
        if self.card and self.card.get("attributes") != expected:
            raise ModelError("model card attributes do not match this version of medgate_iqa")

    @classmethod
    def load(cls, folder: Path | None = None, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> QualityModel:
        folder = folder or weights_dir()
        card = json.loads((folder / "quality.json").read_text())
        backend = OnnxRuntimeBackend(
            folder / "quality.onnx", name=str(card["name"]), version=str(card["version"]), providers=providers
        )
        if backend.info.sha256 != card["sha256"]:
            raise ModelError("quality.onnx does not match the sha256 in its model card")
        return cls(backend, card)

    @property
    def info(self) -> ModelInfo:
        return self.backend.info

    def predict_grid(
        self, grids: list[npt.NDArray[np.float32]], modality: str, batch: int = 16
    ) -> list[SlicePrediction]:
        """Slices already on the model grid (see :func:`~medgate_iqa.core.views.to_grid`)."""
        if modality not in MODALITY_INDEX:
            raise ModelError(f"the quality model has no head for modality {modality}")
        out: list[SlicePrediction] = []
        for i in range(0, len(grids), batch):
            chunk = grids[i : i + batch]
            views = np.stack([model_input(g, modality) for g in chunk])
            x = stack_input(views, np.full(len(chunk), MODALITY_INDEX[modality]))
            result = self.backend.infer({self.backend.inputs[0].name: x})
            sev, ver = result.outputs["severity"], result.outputs["verdict"]
            out.extend(
                SlicePrediction(np.asarray(s, np.float32), np.asarray(v, np.float32))
                for s, v in zip(sev, ver, strict=True)
            )
        return out

    def predict(self, slices: list[npt.NDArray[np.float32]], modality: str) -> list[SlicePrediction]:
        """Slices at their own resolution, in physical units; a CT's table is removed first
        (:func:`~medgate_iqa.core.views.without_table`)."""
        return self.predict_grid([to_grid(without_table(s, modality)) for s in slices], modality)


__all__ = ["ATTRIBUTES", "SEVERITIES", "VERDICTS", "QualityModel", "SlicePrediction", "weights_dir"]
