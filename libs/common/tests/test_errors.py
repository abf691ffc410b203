from __future__ import annotations

import pytest

from medgate_common import errors


def test_problem_json_carries_code_status_and_details() -> None:
    err = errors.MissingTagError("required attribute PatientID is missing or empty", tag="PatientID")
    problem = err.to_problem()
    assert problem["status"] == 400
    assert problem["code"] == "missing_tag"
    assert problem["type"] == "urn:medgate:error:missing_tag"
    assert problem["details"] == {"tag": "PatientID"}
    assert str(err).startswith("[missing_tag]")


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.InvalidDicomError, 400),
        (errors.UnsupportedTransferSyntaxError, 415),
        (errors.GeometryError, 422),
        (errors.NotAnImageError, 422),
        (errors.UnsupportedModalityError, 422),
        (errors.PayloadTooLargeError, 413),
        (errors.NotFoundError, 404),
        (errors.ConflictError, 409),
        (errors.AuthenticationError, 401),
        (errors.PermissionDeniedError, 403),
        (errors.UnsafePathError, 400),
        (errors.TransientError, 503),
    ],
)
def test_http_status_per_error(cls: type[errors.MedgateError], status: int) -> None:
    assert cls("x").http_status == status
    assert issubclass(cls, errors.MedgateError)


def test_only_transient_errors_are_retryable() -> None:
    def walk(cls: type[errors.MedgateError]) -> list[type[errors.MedgateError]]:
        return [cls, *[c for s in cls.__subclasses__() for c in walk(s)]]

    every = set(walk(errors.MedgateError))  # multiple inheritance lists some twice
    assert {c for c in every if c.retryable} == {errors.TransientError}
    codes = [c.code for c in every]
    assert len(codes) == len(set(codes)), "error codes must be unique"
