"""The study-level triage classifier trained by the FL coordinator, served from its exported
ONNX file and card.

The coordinator exports ``global.onnx`` and ``model_card.json``; a release copies them into the
reasoning service's weights folder as ``triage.onnx`` and ``triage.json`` (services never import
each other, so the files are the contract). What the card says, serving does:

* ``input``: tensor name, shape ``[N, 1, S, S]`` and ``window_hu`` (lo, hi). One key slice in
  Hounsfield units goes to ``clip((HU - lo) / (hi - lo), 0, 1)`` and is resized to ``S x S``
  by area averaging (:func:`medgate_common.dicom.pixels.resize_area`), the call the FL data
  makes; ``resize`` must say ``area`` (a card without it predates that and is refused);
* ``output``: tensor name, ``[N, classes]`` logits; softmax gives probabilities;
* ``classes``: the first is the normal class (``normal`` or ``absent``), so the score is
  ``1 - p(normal)``: the probability that the study is abnormal, whatever the class set;
* ``sha256``: must be the ONNX file's, else the card describes other weights and is refused.

The key slice is :func:`medgate_vlm.core.study.key_slice`: the slice with the largest lesion
area in the segmentation (what the classifier was trained on: the slice with most lesion
voxels), or the middle slice when no lesion was found. Without the two files triage is
*unavailable*; a score is never made up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medgate_common.dicom.pixels import resize_area
from medgate_common.errors import ModelError, ModelInputError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend, check_sha256, missing_files, read_card
from medgate_common.schemas.reasoning import TriageScore
from medgate_vlm.core.study import KeySlice

MODEL_FILE = "triage.onnx"
CARD_FILE = "triage.json"
NORMAL_CLASSES = frozenset({"normal", "absent"})


class TensorCard(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    shape: tuple[int | str, ...]


class InputCard(TensorCard):
    window_hu: tuple[float, float]
    resize: Literal["area"]


class TriageCard(BaseModel):
    """The fields of the coordinator's ``model_card.json`` that serving reads; the rest is kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(default="", description="Not written by the coordinator; then the export time is used")
    exported_at: str = ""
    task: str = ""
    classes: tuple[str, ...] = Field(min_length=2)
    input: InputCard
    output: TensorCard
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _consistent(self) -> TriageCard:
        lo, hi = self.input.window_hu
        if hi <= lo:
            raise ValueError("input.window_hu must be (low, high) with low < high")
        if self.classes[0] not in NORMAL_CLASSES:
            raise ValueError(f"the first class must be the normal one ({' or '.join(sorted(NORMAL_CLASSES))})")
        shape = self.input.shape
        if len(shape) != 4 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ValueError("input.shape must be [N, 1, S, S]")
        return self

    @property
    def size(self) -> int:
        return int(self.input.shape[2])

    @property
    def model_version(self) -> str:
        return self.version or self.exported_at or self.sha256[:12]


def triage_present(folder: Path) -> bool:
    return not missing_files(folder, (MODEL_FILE, CARD_FILE))


def preprocess(
    image_hu: npt.NDArray[np.floating], window_hu: tuple[float, float], size: int
) -> npt.NDArray[np.float32]:
    """One slice in HU → the classifier's ``[1, 1, size, size]`` input in [0, 1]."""
    if image_hu.ndim != 2 or min(image_hu.shape) < 2:
        raise ModelInputError(f"the triage input is one 2-D slice, got shape {image_hu.shape}")
    lo, hi = window_hu
    unit = np.clip((image_hu.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return resize_area(unit, size)[np.newaxis, np.newaxis]


@dataclass(frozen=True)
class Triage:
    """The score and the slice it was computed on."""

    score: TriageScore
    key_slice: KeySlice


@dataclass(frozen=True)
class TriageModel:
    backend: ModelBackend
    card: TriageCard

    def __post_init__(self) -> None:
        card, backend = self.card, self.backend
        check_sha256(backend, card.sha256, "triage model")
        inputs = {s.name: s for s in backend.inputs}
        outputs = {s.name: s for s in backend.outputs}
        if card.input.name not in inputs or card.output.name not in outputs:
            raise ModelError(
                f"the triage model's tensors are {sorted(inputs)} → {sorted(outputs)}; "
                f"its card names {card.input.name!r} → {card.output.name!r}"
            )
        width = outputs[card.output.name].shape[-1]
        if width is not None and width != len(card.classes):
            raise ModelError(f"the triage model gives {width} classes; its card lists {len(card.classes)}")

    @classmethod
    def load(cls, folder: Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0) -> TriageModel:
        missing = missing_files(folder, (MODEL_FILE, CARD_FILE))
        if missing:
            raise ModelError(f"no triage model in {folder} ({', '.join(missing)} missing)", folder=str(folder))
        card = read_card(folder / CARD_FILE, TriageCard, "triage card")
        backend = OnnxRuntimeBackend(
            folder / MODEL_FILE, card.name, card.model_version, providers=providers, intra_op_threads=threads
        )
        return cls(backend, card)

    def score(self, volume_hu: npt.NDArray[np.floating], key: KeySlice) -> Triage:
        """The abnormality score of a study from its key slice."""
        image = preprocess(volume_hu[key.index], self.card.input.window_hu, self.card.size)
        result = self.backend.infer({self.card.input.name: image})
        logits = np.asarray(result.outputs[self.card.output.name], dtype=np.float64).reshape(-1)
        shifted = np.exp(logits - logits.max())
        probabilities = shifted / shifted.sum()
        score = float(np.clip(1.0 - probabilities[0], 0.0, 1.0))
        label = self.card.classes[int(np.argmax(probabilities))]
        return Triage(TriageScore(score=round(score, 6), label=label, model=result.model), key)
