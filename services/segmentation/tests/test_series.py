"""Bad input: every series the pipeline cannot map voxel for voxel is refused with a clear,
coded reason before the model runs; a regular series at another spacing is accepted (and
resampled, see test_pipeline)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from seg_fixtures import Series, as_modality, datasets, remake, stretch_after, tilt, without_pixels

from medgate_common.errors import (
    GeometryError,
    InputError,
    MedgateError,
    NotAnImageError,
    UnsupportedModalityError,
)
from medgate_seg.core.series import read_series

CT = ("CT",)


def refusal(series: Series, expected: type[MedgateError]) -> MedgateError:
    with pytest.raises(expected) as caught:
        read_series(datasets(series), CT)
    assert caught.value.message
    return caught.value


def test_a_regular_series_reads_in_volume_order_with_instance_numbers(phantom_series: Series) -> None:
    source = read_series(datasets(phantom_series), CT)
    assert source.volume.shape == (24, 48, 48)
    assert source.volume.spacing == pytest.approx((2.5, 1.25, 1.25))
    # files come head first; the volume goes foot to head, so instance numbers run backwards
    assert source.slice_numbers == tuple(range(24, 0, -1))
    assert [str(ds.SOPInstanceUID) for ds in source.datasets] == list(source.volume.sop_instance_uids)


def test_a_series_in_any_upload_order_reads_the_same(phantom_series: Series) -> None:
    shuffled = [phantom_series[i] for i in (5, 0, 23, 11, *range(1, 5), *range(6, 11), *range(12, 23))]
    assert read_series(datasets(shuffled), CT).slice_numbers == tuple(range(24, 0, -1))


def test_a_structured_report_or_an_image_without_pixels_is_not_an_image(phantom_series: Series) -> None:
    sr = refusal(remake(phantom_series[:3], as_modality("SR")), NotAnImageError)
    assert sr.code == "not_an_image" and sr.http_status == 422 and sr.details["modality"] == "SR"
    stripped = refusal(remake(phantom_series, without_pixels), NotAnImageError)
    assert "without pixel data" in stripped.message


def test_an_mr_series_is_not_for_the_ct_model(phantom_series: Series) -> None:
    err = refusal(remake(phantom_series, as_modality("MR")), UnsupportedModalityError)
    assert err.code == "unsupported_modality" and err.details == {"modality": "MR", "supported": ["CT"]}


def test_a_single_slice_is_not_a_volume(phantom_series: Series) -> None:
    err = refusal(phantom_series[:1], GeometryError)
    assert err.details["reason"] == "single_slice" and err.http_status == 422


def test_missing_slices_are_named_with_their_count(phantom_series: Series) -> None:
    holed = phantom_series[:8] + phantom_series[10:]
    err = refusal(holed, GeometryError)
    assert err.details["reason"] == "missing_slices" and err.details["missing"] == 2
    assert "2 slice(s) missing" in err.message


def test_inconsistent_spacing_is_refused(phantom_series: Series) -> None:
    err = refusal(remake(phantom_series, stretch_after(12, 0.8)), GeometryError)
    assert err.details["reason"] == "inconsistent_spacing"
    assert err.details["min_step_mm"] == pytest.approx(2.5) and err.details["max_step_mm"] == pytest.approx(3.3)


def test_a_gantry_tilt_is_refused_with_its_angle(phantom_series: Series) -> None:
    err = refusal(remake(phantom_series, tilt(15.0)), GeometryError)
    assert err.details["reason"] == "gantry_tilt"
    assert err.details["tilt_degrees"] == pytest.approx(15.0, abs=0.5)


def test_mixed_pixel_spacings_are_refused(phantom_series: Series) -> None:
    def coarser(number: int, ds: Dataset) -> None:
        if number == 3:
            ds.PixelSpacing = [1.5, 1.5]

    assert refusal(remake(phantom_series, coarser), GeometryError).details["reason"] == "mixed_pixel_spacing"


def test_duplicates_and_mixed_series_are_refused(phantom_series: Series) -> None:
    assert refusal(phantom_series + phantom_series[:1], GeometryError).details["reason"] == "duplicate_position"
    other = remake(phantom_series[:2], lambda n, ds: None)
    refusal(phantom_series + other, InputError)


def test_a_regular_series_at_another_spacing_is_accepted(phantom_series: Series) -> None:
    # every second slice: a consistent 5 mm stack, resampled rather than refused
    source = read_series(datasets(phantom_series[::2]), CT)
    assert source.volume.spacing[0] == pytest.approx(5.0)
