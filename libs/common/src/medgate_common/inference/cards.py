"""A model's card next to its ONNX file: read and checked against the file.

Each service keeps its own card schema (what its pipeline needs to feed the model); what
every one of them does the same way lives here: a folder holds ``<name>.onnx`` and its card,
the card is a JSON document validated by the service's schema, and a card whose ``sha256``
does not match the ONNX file is refused at load, so a card never describes other weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from medgate_common.errors import ModelError
from medgate_common.inference.backend import ModelBackend

CardT = TypeVar("CardT", bound=BaseModel)


def missing_files(folder: Path, names: Sequence[str]) -> list[str]:
    """The names in ``names`` that are not files in ``folder``."""
    return [name for name in names if not (folder / name).is_file()]


def read_card(path: Path, schema: type[CardT], what: str = "model card") -> CardT:
    """``path`` validated as ``schema``; a file that cannot be read or is invalid is a ModelError."""
    try:
        return schema.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the {what}: {exc.strerror or exc}", file=str(path)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"{path}: invalid {what}: {problems}", file=str(path)) from None


def check_sha256(backend: ModelBackend, sha256: str, what: str = "model") -> None:
    """Refuse a backend whose model file is not the one its card (``sha256``) describes."""
    if backend.info.sha256 != sha256:
        raise ModelError(
            f"the {what} file does not match its card (sha256 {backend.info.sha256[:12]}…, card says {sha256[:12]}…)"
        )
