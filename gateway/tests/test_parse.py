"""Validation of received bytes: what is indexed must be whole, well-formed and safe."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from gateway_fixtures import SAMPLES, modified, sample_path, with_transfer_syntax_uid

from medgate_common.errors import InvalidDicomError, MissingTagError, UnsupportedTransferSyntaxError
from medgate_gateway.ingest.parse import SUPPORTED_TRANSFER_SYNTAXES, parse_part10, valid_uid


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_public_samples_parse_like_pydicom(name: str) -> None:
    path = sample_path(name)
    parsed = parse_part10(path.read_bytes())
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert parsed.sop_instance_uid == ds.SOPInstanceUID
    assert parsed.study_uid == ds.StudyInstanceUID
    assert parsed.series_uid == ds.SeriesInstanceUID
    assert parsed.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
    assert parsed.transfer_syntax_uid in SUPPORTED_TRANSFER_SYNTAXES
    assert parsed.patient_name == str(ds.get("PatientName", ""))
    assert parsed.modality == ds.get("Modality", "")
    assert parsed.rows == ds.get("Rows")
    assert parsed.number_of_frames == int(ds.get("NumberOfFrames", 1) or 1)


def test_synthetic_series_parses(small_ct: tuple[object, Path]) -> None:
    _study, out = small_ct
    files = sorted((out / "dicom").glob("*.dcm"))
    parsed = [parse_part10(f.read_bytes()) for f in files]
    assert len({p.sop_instance_uid for p in parsed}) == len(files)
    assert {p.series_uid for p in parsed} == {pydicom.dcmread(files[0]).SeriesInstanceUID}
    assert [p.instance_number for p in parsed] == list(range(1, len(files) + 1))


def test_non_dicom_bytes_are_refused() -> None:
    with pytest.raises(InvalidDicomError, match="DICM"):
        parse_part10(b"%PDF-1.7 definitely not an image" * 10)


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_truncated_file_is_refused(cut: int) -> None:
    data = sample_path("explicit").read_bytes()
    with pytest.raises(InvalidDicomError, match="truncated"):
        parse_part10(data[:-cut])


def test_truncated_encapsulated_pixel_data_is_refused() -> None:
    data = sample_path("jpeg2000").read_bytes()
    with pytest.raises(InvalidDicomError):
        parse_part10(data[:-300])


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"])
def test_missing_identifying_uid_is_refused(keyword: str) -> None:
    data = modified(sample_path("explicit"), **{keyword: None})
    with pytest.raises(MissingTagError) as info:
        parse_part10(data)
    assert keyword in info.value.message


@pytest.mark.parametrize(
    "crafted", ["../../etc/passwd", "1.2.3/../../x", "1.2.03.4", "1.2.3.", "1" * 65, "1.2.<script>"]
)
def test_invalid_or_path_like_uids_are_refused(crafted: str) -> None:
    data = modified(sample_path("explicit"), SeriesInstanceUID=crafted)
    with pytest.raises(InvalidDicomError, match="not a valid DICOM UID") as info:
        parse_part10(data)
    assert crafted not in str(info.value.to_problem())  # the crafted value is not echoed


def test_unsupported_transfer_syntax_is_named() -> None:
    data = with_transfer_syntax_uid(sample_path("explicit").read_bytes(), "1.2.840.10008.1.2.2")  # big endian
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        parse_part10(data)
    assert info.value.details["transfer_syntax"] == "1.2.840.10008.1.2.2"


def test_uid_grammar() -> None:
    assert valid_uid("1.2.840.10008.5.1.4.1.1.2")
    assert valid_uid("2.25.0")
    assert not valid_uid("")
    assert not valid_uid("1..2")
    assert not valid_uid("01.2")
