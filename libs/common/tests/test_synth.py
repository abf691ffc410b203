"""Synthetic studies: valid DICOM, exact ground truth, determinism, site differences."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import require_tool
from medgate_common.dicom import load_series
from medgate_common.synth import PROFILES, SynthStudy, generate_study, write_dataset
from medgate_common.synth.anatomy import CT_TISSUES, MR_TISSUES


def dicom_files(out: Path) -> list[Path]:
    return sorted((out / "dicom").glob("*.dcm"))


@pytest.mark.integration
@pytest.mark.parametrize("fixture", ["small_ct", "small_mr"])
def test_every_file_passes_dciodvfy(fixture: str, request: pytest.FixtureRequest) -> None:
    dciodvfy = require_tool("dciodvfy")
    _, out = request.getfixturevalue(fixture)
    for path in dicom_files(out):
        proc = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        report = proc.stdout + proc.stderr
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"
        assert ("CTImage" in report) or ("MRImage" in report)


@pytest.mark.parametrize("fixture", ["small_ct", "small_mr"])
def test_highdicom_and_medgate_agree_on_geometry_and_values(fixture: str, request: pytest.FixtureRequest) -> None:
    study, out = request.getfixturevalue(fixture)
    datasets = [pydicom.dcmread(p) for p in dicom_files(out)]
    hd_volume = hd.get_volume_from_series(datasets, dtype=np.float32)
    ours = load_series(dicom_files(out))
    assert ours.shape == study.grid.shape
    np.testing.assert_array_equal(ours.array, study.hu_or_signal)
    np.testing.assert_allclose(ours.affine, study.affine_lps, atol=1e-4)
    # highdicom indexes (slice, row, col) with its own slice order; compare through LPS.
    hd_array = np.asarray(hd_volume.array)
    assert hd_array.shape == ours.shape
    corner_idx = np.array([[0, 0, 0], [ours.shape[0] - 1, 5, 7]])
    hd_lps = hd_volume.map_indices_to_reference(corner_idx)
    back = np.rint(ours.lps_to_index(hd_lps)).astype(int)
    for (k, r, c), (hk, hr, hc) in zip(back, corner_idx, strict=True):
        assert ours.array[k, r, c] == pytest.approx(hd_array[hk, hr, hc])


@pytest.mark.parametrize(("fixture", "table"), [("small_ct", CT_TISSUES), ("small_mr", MR_TISSUES)])
def test_label_maps_line_up_voxel_for_voxel(fixture: str, table: tuple, request: pytest.FixtureRequest) -> None:
    study, out = request.getfixturevalue(fixture)
    volume = load_series(dicom_files(out))
    organs_img = nib.load(out / "labels" / "organs.nii.gz")
    lesions_img = nib.load(out / "labels" / "lesions.nii.gz")
    np.testing.assert_allclose(organs_img.affine, volume.ras_affine(), atol=1e-4)
    np.testing.assert_allclose(lesions_img.affine, volume.ras_affine(), atol=1e-4)
    organs = np.asarray(organs_img.dataobj).transpose(2, 1, 0)
    lesions = np.asarray(lesions_img.dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(organs, study.organs)
    np.testing.assert_array_equal(lesions, study.lesions)
    profile = PROFILES[study.truth.profile]
    # Each tissue's voxels (away from lesions) carry that tissue's signal in the image read
    # back from DICOM: a shift or flip between label map and image would break this.
    reference = 40.0 if study.header.modality == "CT" else 600.0
    for tissue in table:
        mask = (organs == tissue.label) & (lesions == 0)
        if mask.sum() < 200 or tissue.name in {"air", "bone", "skull", "scalp"}:
            continue
        expected = reference + (tissue.value - reference) * profile.contrast
        tol = 25.0 if study.header.modality == "CT" else 0.2 * expected + 40.0
        assert float(np.median(volume.array[mask])) == pytest.approx(expected, abs=tol), tissue.name
    assert study.truth.lesion_count > 0
    for lesion in study.truth.lesions:
        mask = lesions == lesion.lesion_id
        host = next(t for t in table if t.name == lesion.organ)
        assert set(np.unique(organs[mask])) == {host.label}
        assert lesion.voxels == int(mask.sum())
        shift = float(np.median(volume.array[mask])) - float(np.median(volume.array[(organs == host.label) & ~mask]))
        assert len(set(np.sign(lesion.contrasts))) == 1, "one lesion is either hypo- or hyperdense"
        assert np.sign(shift) == np.sign(lesion.contrasts[0])


def test_study_json_matches_the_label_maps(small_ct: tuple[SynthStudy, Path]) -> None:
    study, out = small_ct
    truth = json.loads((out / "study.json").read_text())
    lesions = study.lesions
    assert truth["lesion_present"] is True
    assert truth["lesion_count"] == len(truth["lesions"]) == int(lesions.max())
    voxel_ml = float(np.prod(study.grid.spacing)) / 1000
    volume = load_series(dicom_files(out))
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in dicom_files(out)]
    numbers = {ds.SOPInstanceUID: ds.InstanceNumber for ds in headers}
    for lesion in truth["lesions"]:
        idx = np.argwhere(lesions == lesion["lesion_id"])
        assert lesion["volume_ml"] == pytest.approx(len(idx) * voxel_ml, abs=1e-3)
        np.testing.assert_allclose(lesion["centroid_lps_mm"], volume.index_to_lps(idx.mean(axis=0)), atol=0.01)
        instance_numbers = {numbers[volume.sop_instance_uids[k]] for k in idx[:, 0]}
        assert (min(instance_numbers), max(instance_numbers)) == tuple(lesion["slice_range"])
        assert lesion["components"] >= 1


def test_lesions_are_fragmented_across_a_cohort() -> None:
    components: list[int] = []
    counts: list[int] = []
    for index in range(12):
        truth = generate_study("CT", seed=2, index=index, slices=24, matrix=96).truth
        counts.append(truth.lesion_count)
        components.extend(les.components for les in truth.lesions)
        for les in truth.lesions:
            assert les.volume_ml > 0 and len(les.contrasts) >= 1
    assert 0 in counts, "some studies are normal"
    assert max(counts) >= 2, "some studies have several lesions"
    assert max(components) >= 2, "some lesions are made of several connected components"


def test_same_seed_same_bytes_and_uids_are_unique(tmp_path: Path) -> None:
    a = generate_study("CT", seed=3, index=0, slices=8, matrix=64)
    b = generate_study("CT", seed=3, index=0, slices=8, matrix=64)
    write_dataset(a, tmp_path / "a")
    write_dataset(b, tmp_path / "b")
    for fa, fb in zip(dicom_files(tmp_path / "a"), dicom_files(tmp_path / "b"), strict=True):
        assert fa.read_bytes() == fb.read_bytes()
    for name in ("organs.nii.gz", "lesions.nii.gz"):
        assert (tmp_path / "a/labels" / name).read_bytes() == (tmp_path / "b/labels" / name).read_bytes()
    c = generate_study("CT", seed=4, index=0, slices=8, matrix=64)
    write_dataset(c, tmp_path / "c")
    uids: set[str] = set()
    for study in ("a", "c"):
        for path in dicom_files(tmp_path / study):
            ds = pydicom.dcmread(path)
            uids.add(ds.SOPInstanceUID)
            assert len(ds.SOPInstanceUID) <= 64
        uids.update({ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID})
    assert len(uids) == 2 * 8 + 2 * 3
    assert a.stored.tobytes() != c.stored.tobytes()


@pytest.mark.parametrize("syntax", ["implicit", "rle", "jpeg-ls", "j2k"])
def test_other_transfer_syntaxes_round_trip_losslessly(syntax: str, tmp_path: Path) -> None:
    study = generate_study("CT", seed=8, index=0, profile="site-b", slices=4, matrix=64)
    write_dataset(study, tmp_path, transfer_syntax=syntax)
    volume = load_series(dicom_files(tmp_path))
    np.testing.assert_array_equal(volume.array, study.hu_or_signal)


def test_sites_look_different() -> None:
    noise: dict[str, float] = {}
    for site in ("site-a", "site-b", "site-c"):
        study = generate_study("CT", seed=1, index=0, profile=site, slices=12, matrix=128, max_lesions=0)
        liver = ndimage_interior(study.organs == 3)
        noise[site] = float(np.std(study.hu_or_signal[liver]))
        spacing = study.grid.spacing
        assert spacing[0] == PROFILES[site].slice_thickness_mm
        assert spacing[1] == pytest.approx(PROFILES[site].ct_fov_mm / 128)
    # Ordered by the profiles' noise levels (site-c quietest, site-b noisiest).
    assert noise["site-c"] < noise["site-a"] < noise["site-b"]
    signed = generate_study("CT", seed=1, profile="site-b", slices=2, matrix=32)
    assert signed.header.signed and signed.stored.dtype == np.int16 and signed.header.rescale_intercept == 0
    unsigned = generate_study("CT", seed=1, profile="site-a", slices=2, matrix=32)
    assert unsigned.stored.dtype == np.uint16 and unsigned.header.rescale_intercept == -1024


def ndimage_interior(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=3)
