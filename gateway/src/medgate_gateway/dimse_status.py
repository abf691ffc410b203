"""MedGate errors as DIMSE status codes, for C-STORE responses and STOW-RS FailureReason.

A C-STORE handler must answer every request with a status, never an exception: this is the
one place where the error tree meets DIMSE.
"""

from __future__ import annotations

from medgate_common.errors import (
    ConflictError,
    InvalidDicomError,
    MedgateError,
    MissingTagError,
    PayloadTooLargeError,
    StorageError,
    TransientError,
    UnsupportedTransferSyntaxError,
)
from medgate_gateway.ingest.parse import SopMismatchError

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: out of resources (the sender may retry later)
NOT_AUTHORIZED = 0x0124  # Refused: not authorized
DATASET_MISMATCH = 0xA900  # Error: data set does not match the SOP class / command
PROCESSING_FAILURE = 0x0110
# Error: cannot understand (0xCxxx); the low bits say why, for the sender's logs.
CANNOT_UNDERSTAND = 0xC000
INVALID_DICOM = 0xC210
MISSING_TAG = 0xC211
BAD_TRANSFER_SYNTAX = 0xC122  # Referenced Transfer Syntax not supported (PS3.18)
CONFLICT = 0xC213


def status_for(exc: BaseException) -> int:
    """The DIMSE status that tells a sender what went wrong, most specific first."""
    if isinstance(exc, SopMismatchError):
        return DATASET_MISMATCH
    if isinstance(exc, MissingTagError):
        return MISSING_TAG
    if isinstance(exc, UnsupportedTransferSyntaxError):
        return BAD_TRANSFER_SYNTAX
    if isinstance(exc, InvalidDicomError):
        return INVALID_DICOM
    if isinstance(exc, ConflictError):
        return CONFLICT
    if isinstance(exc, PayloadTooLargeError | StorageError | TransientError):
        return OUT_OF_RESOURCES
    if isinstance(exc, MedgateError):
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE
