"""The one exception tree of MedGate.

Every error carries a stable machine-readable ``code`` that survives every transport: the
HTTP layer maps it to a problem+json body and ``http_status``, the DICOM listener to a
DIMSE status, Celery retries only errors whose ``retryable`` is true, and the CLI turns it
into an exit code. Messages must never contain patient identifiers.
"""

from __future__ import annotations

from typing import ClassVar


class MedgateError(Exception):
    """Base of every error MedGate raises on purpose."""

    code: ClassVar[str] = "medgate_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = dict(details)

    def to_problem(self) -> dict[str, object]:
        """RFC 9457 problem details; ``details`` must already be free of PHI."""
        problem: dict[str, object] = {
            "type": f"urn:medgate:error:{self.code}",
            "title": self.code.replace("_", " "),
            "status": self.http_status,
            "detail": self.message,
            "code": self.code,
        }
        if self.details:
            problem["details"] = self.details
        return problem

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(MedgateError):
    code = "config_error"
    exit_code = 2


class InputError(MedgateError):
    """The caller sent something we cannot use; sending it again will not help."""

    code = "invalid_input"
    http_status = 400


class InvalidDicomError(InputError):
    code = "invalid_dicom"


class MissingTagError(InvalidDicomError):
    code = "missing_tag"


class UnsupportedTransferSyntaxError(InputError):
    code = "unsupported_transfer_syntax"
    http_status = 415


class GeometryError(InputError):
    """A series cannot be turned into one regular volume (mixed orientation, gaps, ...)."""

    code = "inconsistent_geometry"
    http_status = 422


class NotAnImageError(InputError):
    """A DICOM object with no image to analyse: a structured report, a SEG, a key-object
    note, a presentation state, or an instance stored without its pixel data."""

    code = "not_an_image"
    http_status = 422


class UnsupportedModalityError(InputError):
    """A readable image of a modality the model was not made for (e.g. MR sent to a CT model)."""

    code = "unsupported_modality"
    http_status = 422


class PayloadTooLargeError(InputError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaTypeError(InputError):
    code = "unsupported_media_type"
    http_status = 415


class NotReadyError(MedgateError):
    """The process is up but cannot serve yet (a model still loading). Callers may try again
    later; it is not retried automatically, since waiting does not help a missing model."""

    code = "not_ready"
    http_status = 503


class NotFoundError(MedgateError):
    code = "not_found"
    http_status = 404


class ConflictError(MedgateError):
    """Same identifier, different content (e.g. a second object under one SOP Instance UID)."""

    code = "conflict"
    http_status = 409


class AuthenticationError(MedgateError):
    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(MedgateError):
    code = "forbidden"
    http_status = 403


class StorageError(MedgateError):
    code = "storage_error"


class UnsafePathError(StorageError, InputError):
    """A storage key that would escape its root or contains characters we do not allow."""

    code = "unsafe_path"
    http_status = 400


class ModelError(MedgateError):
    code = "model_error"


class ModelInputError(ModelError, InputError):
    code = "model_input_mismatch"
    http_status = 422


class TransientError(MedgateError):
    """Worth retrying: a broker hiccup, a busy database, a peer that timed out."""

    code = "transient"
    http_status = 503
    retryable = True
    exit_code = 75  # EX_TEMPFAIL
