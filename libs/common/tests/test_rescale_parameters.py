"""Where a frame's rescale slope and intercept come from, classic and enhanced objects."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medgate_common.dicom.io import rescale_parameters


def _transform(slope: float, intercept: float) -> Dataset:
    group, item = Dataset(), Dataset()
    item.RescaleSlope, item.RescaleIntercept = slope, intercept
    group.PixelValueTransformationSequence = Sequence([item])
    return group


def test_a_classic_object_reads_the_top_level_tags_and_defaults_to_identity() -> None:
    ds = Dataset()
    assert rescale_parameters(ds) == [(1.0, 0.0)]
    ds.RescaleSlope, ds.RescaleIntercept = "2", "-1024"
    assert rescale_parameters(ds, 2) == [(2.0, -1024.0), (2.0, -1024.0)]


def test_an_enhanced_object_prefers_per_frame_then_shared_groups_over_top_level_tags() -> None:
    ds = Dataset()
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0  # stray top-level tags, as some converters write
    ds.SharedFunctionalGroupsSequence = Sequence([_transform(1.0, -1024.0)])
    ds.PerFrameFunctionalGroupsSequence = Sequence([_transform(0.5, -100.0), Dataset(), Dataset()])
    assert rescale_parameters(ds, 3) == [(0.5, -100.0), (1.0, -1024.0), (1.0, -1024.0)]
