"""The lesion model: one ONNX file and its card (``lesion_seg.json``).

Everything the pipeline needs to feed the model and read its answer (spacing, patch,
intensity window, threshold, smallest lesion, modalities) comes from the card, never from
code, so new weights with a new card change the behaviour without a release. The card's
sha256 must match the ONNX file: a card describing other weights is refused at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medgate_common.errors import ModelError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend, check_sha256, missing_files, read_card

MODEL_FILE = "lesion_seg.onnx"
CARD_FILE = "lesion_seg.json"
LESION_CLASS = "lesion"


def weights_dir() -> Path:
    """The weights shipped in the package (``medgate_seg/weights``)."""
    return Path(__file__).resolve().parents[1] / "weights"


def model_present(folder: Path) -> bool:
    return not missing_files(folder, (MODEL_FILE, CARD_FILE))


class ModelCard(BaseModel):
    """The fields of ``lesion_seg.json`` that serving reads; the rest (data, metrics) is kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    spacing_mm: tuple[float, float, float] = Field(description="(slice, row, column) spacing the model was trained at")
    patch: tuple[int, int, int] = Field(description="Sliding-window size (slices, rows, columns), multiples of 8")
    window_hu: tuple[float, float]
    modalities: tuple[str, ...] = Field(min_length=1)
    classes: tuple[str, ...] = Field(min_length=2)
    threshold: float = Field(gt=0.0, lt=1.0)
    min_lesion_voxels: int = Field(ge=0, description="Smallest island kept, in voxels at spacing_mm")

    @field_validator("spacing_mm")
    @classmethod
    def _positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError("spacings must be positive")
        return value

    @field_validator("patch")
    @classmethod
    def _multiple_of_8(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(p <= 0 or p % 8 for p in value):
            raise ValueError("every patch size must be a positive multiple of 8")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        lo, hi = self.window_hu
        if hi <= lo:
            raise ValueError("window_hu must be (low, high) with low < high")
        if LESION_CLASS not in self.classes:
            raise ValueError(f"classes must name {LESION_CLASS!r}")
        return self

    @property
    def lesion_channel(self) -> int:
        return self.classes.index(LESION_CLASS)

    @property
    def min_lesion_ml(self) -> float:
        """The smallest island as a physical volume, so that it means the same on any grid."""
        sz, sy, sx = self.spacing_mm
        return self.min_lesion_voxels * sz * sy * sx / 1000.0


@dataclass(frozen=True)
class LesionModel:
    """A backend that runs the network, and the card that says how to use it."""

    backend: ModelBackend
    card: ModelCard

    def __post_init__(self) -> None:
        card, backend = self.card, self.backend
        check_sha256(backend, card.sha256)
        inputs = {s.name: s for s in backend.inputs}
        outputs = {s.name: s for s in backend.outputs}
        if card.input not in inputs or card.output not in outputs:
            raise ModelError(
                f"the model's tensors are {sorted(inputs)} → {sorted(outputs)}; "
                f"its card names {card.input!r} → {card.output!r}"
            )
        if len(inputs[card.input].shape) != 5 or len(outputs[card.output].shape) != 5:
            raise ModelError("the lesion model must take and give [N, C, D, H, W] tensors")
        channels = outputs[card.output].shape[1]
        if channels is not None and channels != len(card.classes):
            raise ModelError(f"the model gives {channels} channels; its card lists {len(card.classes)} classes")

    @property
    def max_batch(self) -> int | None:
        """How many patches one call may take (None: any number)."""
        spec = next(s for s in self.backend.inputs if s.name == self.card.input)
        return spec.shape[0]

    @classmethod
    def load(cls, folder: Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0) -> LesionModel:
        missing = missing_files(folder, (MODEL_FILE, CARD_FILE))
        if missing:
            raise ModelError(
                f"no lesion model in {folder} ({', '.join(missing)} missing); set MEDGATE_SEG_WEIGHTS to a "
                "folder made by `medgate seg train`",
                folder=str(folder),
            )
        card = read_card(folder / CARD_FILE, ModelCard)
        backend = OnnxRuntimeBackend(
            folder / MODEL_FILE, card.name, card.version, providers=providers, intra_op_threads=threads
        )
        return cls(backend, card)
