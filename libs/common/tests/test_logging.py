from __future__ import annotations

import io
import json
import logging

import pytest

from medgate_common.dicom import read_dataset
from medgate_common.logging import REDACTED, configure_logging, identifier_registry
from medgate_common.synth import SynthStudy


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    handler = configure_logging("test", level="DEBUG", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    identifier_registry().clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_phi_keys_in_extra_fields_are_redacted(log_stream: io.StringIO) -> None:
    logging.getLogger("t").info(
        "stored",
        extra={
            "PatientName": "DOE^JANE",
            "patient_id": "12345",
            "sop_uid": "1.2.3",
            "nested": {"AccessionNumber": "A9"},
        },
    )
    (record,) = lines(log_stream)
    assert record["PatientName"] == REDACTED
    assert record["patient_id"] == REDACTED
    assert record["nested"] == {"AccessionNumber": REDACTED}
    assert record["sop_uid"] == "1.2.3"
    assert record["service"] == "test"
    assert "DOE" not in log_stream.getvalue()


def test_identifiers_read_from_dicom_never_reach_the_log(
    log_stream: io.StringIO, small_ct: tuple[SynthStudy, object]
) -> None:
    _study, out = small_ct
    path = next((out / "dicom").glob("*.dcm"))  # type: ignore[operator]
    ds = read_dataset(path)
    name, pid = str(ds.PatientName), str(ds.PatientID)
    log = logging.getLogger("t")
    log.warning("odd instance for %s (%s)", name, pid)
    log.info("dataset %s", ds)
    try:
        raise ValueError(f"cannot place patient {pid}")
    except ValueError:
        log.exception("failed")
    text = log_stream.getvalue()
    assert name not in text and name.replace("^", " ") not in text
    assert pid not in text
    records = lines(log_stream)
    assert records[0]["message"] == f"odd instance for {REDACTED} ({REDACTED})"
    assert records[1]["message"] == f"dataset <Dataset {ds.SOPInstanceUID}>"
    assert REDACTED in str(records[2]["exc"])


def test_text_formatter_masks_too() -> None:
    stream = io.StringIO()
    handler = configure_logging("test", json_lines=False, stream=stream)
    try:
        identifier_registry().add(["SMITH^JOHN"])
        logging.getLogger("t").warning("patient SMITH^JOHN arrived")
        assert "SMITH" not in stream.getvalue()
        assert REDACTED in stream.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)
        identifier_registry().clear()
