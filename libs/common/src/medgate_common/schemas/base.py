"""Common base of every wire type."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

SCHEMA_VERSION = 1

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _check_uid(value: str) -> str:
    if len(value) > 64 or not _UID.fullmatch(value):
        raise ValueError("not a valid DICOM UID (digits and dots, no leading zeros, at most 64 chars)")
    return value


DicomUID = Annotated[str, AfterValidator(_check_uid)]


class WireModel(BaseModel):
    """Immutable, strict about unknown fields, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
