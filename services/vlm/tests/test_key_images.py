"""Key images: valid Secondary Captures for dciodvfy, marked as AI-generated, linked to the
source slice's patient, study and Frame of Reference, with every pixel of each lesion's
boundary in that lesion's colour (with or without a heatmap beneath) and a heatmap that
leaves cold pixels as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from scipy import ndimage
from shared_fixtures import dciodvfy
from vlm_fixtures import VLM_MODEL, SegmentedStudy

from medgate_common.dicom.outlines import colour_of
from medgate_common.errors import InputError
from medgate_vlm.core.key_images import MARK, Rendering, build_key_image, render, sc_bytes

pytestmark = pytest.mark.integration

#: SC has no Frame of Reference module; we keep the source's FoR UID for the linkage anyway.
EXTENDED_SOP_CLASS = {
    "Warning - Attribute is not present in standard DICOM IOD - (0x0020,0x0052) UI Frame of Reference UID ",
    "Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class",
}
WINDOW = (40.0, 400.0)


def key_slice(study: SegmentedStudy) -> int:
    """The slice where the largest lesion is largest."""
    return int(np.argmax(np.count_nonzero(study.labels == 1, axis=(1, 2))))


def boundaries(labels: np.ndarray, scale: int) -> dict[int, np.ndarray]:
    """Per lesion, its one-pixel boundary on the enlarged grid."""
    big = np.kron(labels, np.ones((scale, scale), dtype=labels.dtype))
    return {k: (big == k) & ~ndimage.binary_erosion(big == k) for k in (int(v) for v in np.unique(big) if v)}


def write(study: SegmentedStudy, index: int, rendering: Rendering, path: Path) -> pydicom.Dataset:
    sc = build_key_image(
        study.source.datasets[index],
        rendering,
        VLM_MODEL,
        series_instance_uid=str(generate_uid()),
        sop_instance_uid=str(generate_uid()),
        instance_number=1,
    )
    path.write_bytes(sc_bytes(sc))
    return pydicom.dcmread(path)


def test_a_key_image_outlines_each_lesion_and_is_linked_to_its_source(
    segmented: SegmentedStudy, tmp_path: Path
) -> None:
    k = key_slice(segmented)
    labels = segmented.labels[k]
    rendering = render(segmented.source.volume.array[k], labels, WINDOW, "image 12 - AI lesion outline")
    path = tmp_path / "key.dcm"
    back = write(segmented, k, rendering, path)
    assert set(dciodvfy(path)) <= EXTENDED_SOP_CLASS

    pixels = back.pixel_array
    assert pixels.shape == (labels.shape[0] * rendering.scale, labels.shape[1] * rendering.scale, 3)
    assert back.Columns >= 256 and back.PhotometricInterpretation == "RGB"
    edges = boundaries(labels, rendering.scale)
    assert edges
    for lesion_id, edge in edges.items():
        assert edge.any()
        assert (pixels[edge] == colour_of(lesion_id)).all()
    # away from outlines and text the slice is grey
    grey = pixels[:, :, 0] == pixels[:, :, 2]
    assert grey.mean() > 0.95

    source = segmented.source.datasets[k]
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID", "AccessionNumber"):
        assert back[keyword].value == source[keyword].value, keyword
    assert back.SeriesInstanceUID != source.SeriesInstanceUID
    [item] = back.SourceImageSequence
    assert (item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID) == (source.SOPClassUID, source.SOPInstanceUID)
    assert list(back.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert back.BurnedInAnnotation == "YES"
    assert "AI-GENERATED" in back.SeriesDescription and back.ImageComments.startswith(MARK)
    assert (back.ManufacturerModelName, back.SoftwareVersions) == (VLM_MODEL.name, VLM_MODEL.version)
    np.testing.assert_allclose(
        [float(v) for v in back.PixelSpacing], [float(v) / rendering.scale for v in source.PixelSpacing]
    )


def test_a_heatmap_is_blended_under_the_outlines(segmented: SegmentedStudy, tmp_path: Path) -> None:
    k = key_slice(segmented)
    image, labels = segmented.source.volume.array[k], segmented.labels[k]
    rows, cols = np.nonzero(labels == 1)
    heat = np.zeros(labels.shape, dtype=np.float32)
    heat[rows.min() - 4 : rows.max() + 5, cols.min() - 4 : cols.max() + 5] = 0.9
    plain = render(image, labels, WINDOW, "caption")
    hot = render(image, labels, WINDOW, "caption", heatmap=heat)
    assert hot.scale == plain.scale
    path = tmp_path / "heat.dcm"
    back = write(segmented, k, hot, path)
    assert set(dciodvfy(path)) <= EXTENDED_SOP_CLASS
    pixels = back.pixel_array
    np.testing.assert_array_equal(pixels, hot.rgb)

    warm = np.kron(heat, np.ones((hot.scale, hot.scale))) > 0
    edges = boundaries(labels, hot.scale)
    outline = np.logical_or.reduce(list(edges.values()))
    for lesion_id, edge in edges.items():
        assert (pixels[edge] == colour_of(lesion_id)).all()
    # cold pixels are untouched; warm ones (outside outlines and text) move towards the heat
    # colour of 0.9 on the black-red-yellow-white ramp
    np.testing.assert_array_equal(pixels[~warm], plain.rgb[~warm])
    inner = warm & ~outline & (plain.rgb.min(axis=2) == plain.rgb.max(axis=2))
    assert inner.sum() > 100
    colour = np.array([255.0, 255.0, 0.7 * 255.0])
    before = np.abs(plain.rgb[inner] - colour).sum(axis=1)
    after = np.abs(pixels[inner] - colour).sum(axis=1)
    assert (after < before).all()


def test_bad_heatmaps_and_slices_are_refused(segmented: SegmentedStudy) -> None:
    k = key_slice(segmented)
    image, labels = segmented.source.volume.array[k], segmented.labels[k]
    with pytest.raises(InputError, match="heatmap is"):
        render(image, labels, WINDOW, "c", heatmap=np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(InputError, match=r"within \[0, 1\]"):
        render(image, labels, WINDOW, "c", heatmap=np.full(labels.shape, 2.0, dtype=np.float32))
    with pytest.raises(InputError, match=r"within \[0, 1\]"):
        render(image, labels, WINDOW, "c", heatmap=np.full(labels.shape, np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="2-D slice"):
        render(segmented.source.volume.array, segmented.labels, WINDOW, "c")
