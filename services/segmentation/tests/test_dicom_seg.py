"""The DICOM SEG: valid for dicom3tools' ``dciodvfy``, read back by highdicom to the very
mask that was written, and on the source's own planes. Checked with ground truth on a
synthetic CT (the generator's lesion label map) and on a real brain MR (mricron's Colin27 T1
with AAL atlas regions as segments), whose orientation is not the identity."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from seg_fixtures import write_nifti_as_mr
from shared_fixtures import dciodvfy

from medgate_common.samples import mricron_file
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.segmentation import Lesion
from medgate_common.synth import SynthStudy
from medgate_seg.core.dicom_seg import SegIdentity, build_seg, seg_bytes
from medgate_seg.core.series import SourceSeries, read_series

pytestmark = pytest.mark.integration

MODEL = ModelInfo(name="lesion-seg", version="1.0.0", sha256="ab" * 32, backend="onnxruntime")
#: AAL regions written as segments: hippocampus L/R, thalamus L/R.
AAL_REGIONS = (37, 38, 77, 78)


def lesions_of(labels: np.ndarray) -> list[Lesion]:
    """Minimal lesion entries for the ids of ``labels`` (the writer uses only their ids)."""
    ids = [int(v) for v in np.unique(labels) if v]
    assert ids == list(range(1, len(ids) + 1))
    return [
        Lesion(lesion_id=i, volume_ml=1.0, centroid_lps_mm=(0.0, 0.0, 0.0), slice_range=(1, 1), mean_intensity=0.0)
        for i in ids
    ]


def check_seg(source: SourceSeries, labels: np.ndarray, tmp_path: Path) -> hd.seg.Segmentation:
    """Write ``labels`` (volume order, 1..K) as a SEG; check it against dciodvfy, highdicom and the source."""
    identity = SegIdentity.fresh()
    seg = build_seg(
        source.datasets,
        source.volume.frame_numbers,
        labels.astype(np.uint16),
        lesions_of(labels),
        MODEL,
        0.5,
        identity,
        "0.1.0",
    )
    path = tmp_path / "seg.dcm"
    path.write_bytes(seg_bytes(seg))
    assert dciodvfy(path) == []

    back = hd.seg.segread(path)
    ds: Dataset = pydicom.dcmread(path)
    assert back.SOPInstanceUID == identity.sop_instance_uid
    assert ds.FrameOfReferenceUID == source.volume.frame_of_reference_uid
    assert ds.StudyInstanceUID == source.datasets[0].StudyInstanceUID
    assert ds.SegmentationType == "BINARY" and ds.ContentLabel == "LESIONS"
    referenced = {item.ReferencedSOPInstanceUID for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(source.volume.sop_instance_uids)
    assert ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient == (
        source.datasets[0].ImageOrientationPatient
    )
    # every frame lies on the plane of the source image it names
    by_uid = {str(s.SOPInstanceUID): s for s in source.datasets}
    for frame in ds.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose(
            [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in by_uid[uid].ImagePositionPatient],
            atol=1e-4,
        )
    # and reads back, per source instance, to the mask that was written
    mask = back.get_pixels_by_source_instance(
        list(source.volume.sop_instance_uids), combine_segments=True, assert_missing_frames_are_empty=True
    )
    np.testing.assert_array_equal(mask, labels)
    described = [
        (s.SegmentNumber, s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeValue) for s in ds.SegmentSequence
    ]
    assert described == [(i, f"Lesion {i}", "52988006") for i in range(1, int(labels.max()) + 1)]
    algorithm = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (MODEL.name, MODEL.version)
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence
    return back


def test_the_ground_truth_of_a_synthetic_ct_round_trips_through_a_seg(
    truth_ct: tuple[SynthStudy, Path], tmp_path: Path
) -> None:
    study, folder = truth_ct
    source = read_series([pydicom.dcmread(p) for p in sorted((folder / "dicom").glob("*.dcm"))], ("CT",))
    truth = nib.load(folder / "labels" / "lesions.nii.gz")
    # the label map and the series share one grid in patient space
    np.testing.assert_allclose(truth.affine, source.volume.ras_affine(), atol=1e-4)
    labels = np.asarray(truth.dataobj).transpose(2, 1, 0)
    assert labels.max() == study.truth.lesion_count >= 2
    seg = check_seg(source, labels, tmp_path)
    # frames only where a lesion is: one per (lesion, slice it touches)
    assert seg.NumberOfFrames == sum(len(np.unique(np.nonzero(labels == k)[0])) for k in range(1, labels.max() + 1))


def test_atlas_regions_on_the_real_mricron_brain_round_trip_through_a_seg(tmp_path: Path) -> None:
    t1 = nib.load(mricron_file("ch2.nii.gz"))
    aal = np.asarray(nib.load(mricron_file("aal.nii.gz")).dataobj)
    slices = range(60, 90)
    paths = write_nifti_as_mr(np.asarray(t1.dataobj), t1.affine, slices, tmp_path / "mr")
    source = read_series([pydicom.dcmread(p) for p in paths], ("MR",))
    # the series lies where the NIfTI does: voxel (i, j, k) of the template is volume [k - 60, j, i]
    np.testing.assert_allclose(
        source.volume.index_to_lps([0, 0, 0]), (-t1.affine[0, 3], -t1.affine[1, 3], 60 + t1.affine[2, 3])
    )
    assert source.datasets[0].ImageOrientationPatient != [1, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(source.volume.array, np.asarray(t1.dataobj)[:, :, slices].transpose(2, 1, 0))
    region = aal[:, :, slices].transpose(2, 1, 0)
    labels = np.zeros(region.shape, dtype=np.uint16)
    for number, code in enumerate(AAL_REGIONS, start=1):
        labels[region == code] = number
    assert all((labels == n).any() for n in range(1, 5))
    check_seg(source, labels, tmp_path)
