"""The real images the quality model is trained and tested on: which they are, that the
held-out ones stay out of training, and that they are read in physical units."""

from __future__ import annotations

import numpy as np

from medgate_iqa.core.sources import dicom_frames, real_slices


def test_an_enhanced_objects_rescale_comes_from_its_functional_groups() -> None:
    # eCT_Supplemental (a CT perfusion map) keeps its rescale in the shared functional groups;
    # training and the gate's series reader must both apply it
    from medgate_common.samples import locate
    from medgate_iqa.core.series import read_series

    frame = dicom_frames("eCT_Supplemental.dcm")[0]
    assert frame.min() == -1024.0  # stored 0, intercept -1024
    served = read_series([locate("eCT_Supplemental.dcm")]).slices[0]
    np.testing.assert_array_equal(served, frame)


def test_held_out_real_images_never_reach_training() -> None:
    train_slices, test_slices = real_slices("train"), real_slices("test")
    train = {b.source.split(":")[1] for b in train_slices}
    test = {b.source.split(":")[1] for b in test_slices}
    assert {"693_J2KR.dcm", "explicit_VR-UN.dcm"} <= test
    assert not {"693_J2KI.dcm", "693_J2KR.dcm", "693_UNCI.dcm", "693_UNCR.dcm", "explicit_VR-UN.dcm"} & train
    shared = train & test  # volumes split by slice range: no slice in both
    for name in shared:
        tr = {b.source for b in train_slices if name in b.source}
        te = {b.source for b in test_slices if name in b.source}
        assert not tr & te
    assert sum(b.modality == "CT" for b in train_slices) == 3
