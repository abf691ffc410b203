"""Reading real public DICOM files: decoding, geometry, and malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from medgate_common.dicom import decode_pixels, load_series, read_dataset
from medgate_common.errors import (
    GeometryError,
    InputError,
    InvalidDicomError,
    MissingTagError,
    UnsupportedTransferSyntaxError,
)
from medgate_common.samples import pydicom_dir, pydicom_file
from medgate_common.synth import SynthStudy


def test_ct_small_geometry_and_hounsfield_units() -> None:
    vol = load_series([pydicom_file("CT_small.dcm")])
    assert vol.shape == (1, 128, 128)
    assert vol.spacing[1:] == pytest.approx((0.661468, 0.661468))
    np.testing.assert_allclose(vol.affine[:3, 3], [-158.135803, -179.035797, -75.699997])
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(vol.array[0], expected)
    # Voxel (row 10, col 20) sits 20 columns along +x and 10 rows along +y from the origin.
    np.testing.assert_allclose(
        vol.index_to_lps([0, 10, 20]), [-158.135803 + 20 * 0.661468, -179.035797 + 10 * 0.661468, -75.699997], atol=1e-5
    )
    np.testing.assert_allclose(vol.lps_to_index(vol.index_to_lps([0, 10, 20])), [0, 10, 20], atol=1e-9)


@pytest.mark.parametrize(
    "name",
    ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"],
)
def test_transfer_syntaxes_decode_to_the_same_pixels(name: str) -> None:
    reference = decode_pixels(read_dataset(pydicom_file("MR_small.dcm")))
    np.testing.assert_array_equal(decode_pixels(read_dataset(pydicom_file(name))), reference)


def test_jpeg2000_and_deflate_decode() -> None:
    j2k = read_dataset(pydicom_file("693_J2KI.dcm"))
    assert j2k.file_meta.TransferSyntaxUID == pydicom.uid.JPEG2000
    pixels = decode_pixels(j2k)
    assert pixels.shape == (512, 512)
    assert 500 < float(pixels.std()) < 5000
    unc = decode_pixels(read_dataset(pydicom_file("693_UNCI.dcm")))
    # The lossy J2K file and the uncompressed original of the same image agree closely.
    assert float(np.mean(np.abs(pixels.astype(np.float64) - unc))) < 40.0
    dfl = read_dataset(pydicom_file("image_dfl.dcm"))
    assert dfl.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert decode_pixels(dfl).shape == (512, 512)


def test_real_ct_series_slice_order_and_spacing() -> None:
    folder = pydicom_dir("dicomdirtests/98892001/CT5N")
    vol = load_series(sorted(folder.iterdir(), reverse=True))
    assert vol.shape == (5, 16, 16)
    assert vol.spacing == pytest.approx((2.5, 0.488281, 0.488281))
    z = [float(pydicom.dcmread(folder / p).ImagePositionPatient[2]) for p in sorted(folder.iterdir())]
    assert vol.affine[2, 3] == pytest.approx(min(z))
    slice_z = [
        float(pydicom.dcmread(folder / p).ImagePositionPatient[2]) for p in ("3353", "3023", "2693", "2392", "2062")
    ]
    # Files are named in an order unrelated to position; the volume is sorted along +z.
    assert [vol.index_to_lps([k, 0, 0])[2] for k in range(5)] == pytest.approx(sorted(slice_z))


def test_real_series_with_a_gap_is_refused_and_its_regular_part_loads() -> None:
    folder = pydicom_dir("dicomdirtests/77654033/CT2")
    with pytest.raises(GeometryError, match="irregular slice spacing"):
        load_series(sorted(folder.iterdir()))
    vol = load_series([folder / n for n in ("17196", "17136", "17166")])
    assert vol.spacing[0] == pytest.approx(1.25)
    assert vol.affine[2, 3] == pytest.approx(103.019997)


def test_enhanced_multiframe_ct_uses_functional_groups() -> None:
    vol = load_series([pydicom_file("eCT_Supplemental.dcm")])
    assert vol.shape == (2, 512, 512)
    assert vol.spacing == pytest.approx((10.0, 0.388672, 0.388672))
    assert vol.frame_numbers in ((1, 2), (2, 1))


def test_malformed_input_gets_clear_errors(tmp_path: Path, small_ct: tuple[SynthStudy, Path]) -> None:
    with pytest.raises(InvalidDicomError, match="not a DICOM"):
        read_dataset(b"GIF89a" + b"\x00" * 200)
    good = next((small_ct[1] / "dicom").glob("*.dcm")).read_bytes()
    truncated = read_dataset(good[: len(good) // 2])
    with pytest.raises(InvalidDicomError):
        decode_pixels(truncated)
    no_pixels = read_dataset(good)
    del no_pixels.PixelData
    with pytest.raises(MissingTagError, match="Pixel Data"):
        decode_pixels(no_pixels)
    no_position = read_dataset(good)
    del no_position.ImagePositionPatient
    with pytest.raises(MissingTagError, match="ImagePositionPatient"):
        load_series([no_position])
    odd_syntax = read_dataset(good)
    odd_syntax.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no pixel decoder
    with pytest.raises(UnsupportedTransferSyntaxError, match="MPEG2"):
        decode_pixels(odd_syntax)


def test_inconsistent_series_are_refused(small_ct: tuple[SynthStudy, Path]) -> None:
    files = sorted((small_ct[1] / "dicom").glob("*.dcm"))
    datasets = [read_dataset(f) for f in files[:6]]
    with pytest.raises(GeometryError, match="share one position"):
        load_series([*datasets, read_dataset(files[0])])
    tilted = read_dataset(files[6])
    tilted.ImageOrientationPatient = [1, 0, 0, 0, 0.9848078, -0.1736482]
    with pytest.raises(GeometryError, match="orientations"):
        load_series([*datasets, tilted])
    with pytest.raises(GeometryError, match="irregular"):
        load_series([datasets[0], datasets[1], datasets[3]])
    other = read_dataset(files[7])
    other.SeriesInstanceUID = "1.2.3.4"
    with pytest.raises(InputError, match="more than one series"):
        load_series([*datasets, other])
