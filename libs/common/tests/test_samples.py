"""The real public files that ship offline (nibabel, mricron-data) load with sane geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from medgate_common.samples import SampleDataMissingError, locate, mricron_file, nibabel_file, pydicom_file


def test_nibabel_example_epi() -> None:
    img = nib.load(nibabel_file("example4d.nii.gz"))
    assert img.shape == (128, 96, 24, 2)
    assert np.asarray(img.dataobj).std() > 0


def test_mricron_brain_and_atlas_share_a_grid_and_the_atlas_covers_brain() -> None:
    t1 = nib.load(mricron_file("ch2.nii.gz"))
    aal = nib.load(mricron_file("aal.nii.gz"))
    assert t1.shape == (181, 217, 181)
    assert aal.shape == t1.shape
    np.testing.assert_allclose(aal.affine, t1.affine, atol=1e-3)
    assert nib.affines.voxel_sizes(t1.affine) == pytest.approx((1.0, 1.0, 1.0))
    brain = np.asarray(aal.dataobj) > 0
    intensity = np.asarray(t1.dataobj, dtype=np.float32)
    # Atlas regions sit on brain tissue, brighter than everything outside them (CSF, skull,
    # scalp and air), and the corners of the grid are empty air.
    assert intensity[brain].mean() > 2 * intensity[~brain].mean()
    assert intensity[:10, :10, :10].max() == 0
    assert len(np.unique(np.asarray(aal.dataobj))) > 100


def test_missing_files_raise_a_named_error() -> None:
    with pytest.raises(SampleDataMissingError):
        pydicom_file("no_such_file_here.dcm")
    with pytest.raises(SampleDataMissingError):
        mricron_file("nothing.nii.gz")
    assert locate("CT_small.dcm").name == "CT_small.dcm"
