"""JSON-lines logging that never writes patient identifiers.

Two guards work together:

* **Keys.** Structured fields (``extra=``) whose name is a known PHI attribute
  (``PatientName``, ``patient_id``, ``AccessionNumber``, ...) are replaced by a marker.
* **Values.** Identifiers seen while reading DICOM are registered with
  :func:`register_identifiers`; any later occurrence of them in a message, an argument, an
  extra field or a traceback is masked. A pydicom ``Dataset`` passed as an argument is
  rendered as its SOP Instance UID only, never as its element dump.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "[PHI]"

PHI_KEYWORDS: frozenset[str] = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientMotherBirthName",
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "AccessionNumber",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "InstitutionAddress",
        "MedicalRecordLocator",
        "IssuerOfPatientID",
    }
)

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _normalise_key(key: str) -> str:
    return _SNAKE.sub("_", key).lower().replace("-", "_")


_PHI_KEYS_NORMALISED = frozenset(_normalise_key(k) for k in PHI_KEYWORDS) | {
    "patient",
    "patient_name",
    "patient_id",
    "birth_date",
    "mrn",
    "accession",
}

# Attributes stored on every LogRecord; everything else in record.__dict__ came from extra=.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class IdentifierRegistry:
    """A bounded, thread-safe set of identifier strings to mask in every log line."""

    def __init__(self, capacity: int = 4096, min_length: int = 3) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._min_length = min_length
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for raw in values:
                for value in {raw.strip(), raw.replace("^", " ").strip()}:
                    if len(value) < self._min_length:
                        continue
                    self._items[value] = None
                    self._items.move_to_end(value)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
            self._pattern = None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._pattern = None

    def mask(self, text: str) -> str:
        with self._lock:
            if not self._items:
                return text
            if self._pattern is None:
                ordered = sorted(self._items, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE)
            pattern = self._pattern
        return pattern.sub(REDACTED, text)


_registry = IdentifierRegistry()


def register_identifiers(values: Iterable[str]) -> None:
    """Remember identifiers (patient name, ID, accession, ...) so logs mask them."""
    _registry.add(v for v in values if v)


def register_dataset(ds: object) -> None:
    """Register the PHI attributes of a pydicom Dataset (duck-typed; no pydicom import here)."""
    values: list[str] = []
    for keyword in PHI_KEYWORDS:
        value = getattr(ds, keyword, None)
        if value is None:
            continue
        if isinstance(value, list | tuple):
            values.extend(str(v) for v in value)
        else:
            values.append(str(value))
    register_identifiers(values)


def identifier_registry() -> IdentifierRegistry:
    return _registry


def _is_phi_key(key: str) -> bool:
    return key in PHI_KEYWORDS or _normalise_key(key) in _PHI_KEYS_NORMALISED


def _render_arg(value: object) -> object:
    # A pydicom Dataset prints every element, names included: log only its UID.
    if type(value).__name__ in {"Dataset", "FileDataset"}:
        uid = getattr(value, "SOPInstanceUID", None)
        return f"<Dataset {uid}>" if uid else "<Dataset>"
    return value


def scrub(value: object) -> object:
    """Recursively redact PHI keys and registered identifier values from a JSON-able value."""
    if isinstance(value, str):
        return _registry.mask(value)
    if isinstance(value, Mapping):
        return {str(k): (REDACTED if _is_phi_key(str(k)) else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _registry.mask(str(_render_arg(value)))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, message and the extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple):
            record.args = tuple(_render_arg(a) for a in record.args)
        message = record.getMessage()
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": message,
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(scrub(payload), default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the same redaction as the JSON form."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple):
            record.args = tuple(_render_arg(a) for a in record.args)
        line = super().format(record)
        return _registry.mask(line)


def configure_logging(
    service: str,
    level: str = "INFO",
    json_lines: bool = True,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one handler on the root logger (replacing earlier MedGate handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("medgate")
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "medgate":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
