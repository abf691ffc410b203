"""The pipeline's arithmetic with a stand-in model whose answer is known exactly (voxels
brighter than 130 HU, halfway between tissue and sphere): resampling to the model grid and back keeps every lesion where it
is, the sliding window blends patches without seams, small islands go, fragments group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from seg_fixtures import BLOBS, SHAPE, SPACING, Series, blob_phantom, bright_spot_model, datasets, read_all, write_ct

from medgate_common.errors import ModelError
from medgate_common.inference import OnnxRuntimeBackend
from medgate_seg.core.dicom_seg import SegIdentity
from medgate_seg.core.lesions import find_lesions
from medgate_seg.core.model import CARD_FILE, LesionModel
from medgate_seg.core.pipeline import Options, Segmenter
from medgate_seg.core.resample import model_shape, resample
from medgate_seg.core.series import read_series
from medgate_seg.core.sliding import gaussian_importance, infer_probability, window_starts


def test_resampling_keeps_a_linear_ramp_and_comes_back_to_the_same_grid() -> None:
    z = np.arange(24, dtype=np.float32)[:, None, None] * np.ones((1, 48, 48), np.float32)
    grid = model_shape((24, 48, 48), SPACING, (3.0, 3.0, 3.0))
    assert grid == (20, 20, 20)
    down = resample(z, grid)
    # each model voxel sits at the physical centre of what it covers: (j + 0.5) * 24/20 - 0.5
    np.testing.assert_allclose(down[:, 0, 0], (np.arange(20) + 0.5) * 1.2 - 0.5, atol=1e-5)
    back = resample(down, (24, 48, 48))
    np.testing.assert_allclose(back[2:-2, 0, 0], z[2:-2, 0, 0], atol=1e-4)


def test_window_starts_cover_the_axis_and_end_flush() -> None:
    assert window_starts(48, 48, 0.5) == [0]
    assert window_starts(20, 48, 0.5) == [0]
    assert window_starts(100, 48, 0.5) == [0, 24, 48, 52]
    weight = gaussian_importance((16, 32, 32))
    assert weight.max() == 1.0 and weight.min() > 0 and weight[8, 16, 16] > weight[0, 0, 0]


def test_sliding_windows_blend_without_seams(segmenter: Segmenter) -> None:
    """A voxel-wise model gives the same answer on every window: the blend must too."""
    rng = np.random.default_rng(0)
    image = rng.random((37, 70, 53), dtype=np.float32)
    card = segmenter.model.card
    blended = infer_probability(
        segmenter.model.backend, image, patch=card.patch, input_name="image", output_name="probabilities", channel=1
    )
    whole = segmenter.model.backend.infer({"image": image[None, None]}).outputs["probabilities"][0, 1]
    np.testing.assert_allclose(blended, whole, atol=1e-5)


def test_lesions_are_found_where_they_are(segmenter: Segmenter, phantom_series: Series) -> None:
    segmentation = segmenter.segment(datasets(phantom_series))
    volume = segmentation.source.volume
    assert segmentation.model_grid == (20, 20, 20)
    big, small = segmentation.lesions
    truth = blob_phantom(SHAPE, SPACING, BLOBS) > 130
    found = segmentation.lesion_map.labels > 0
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice > 0.85
    for lesion, ((cz, cy, cx), radius) in zip((big, small), BLOBS, strict=True):
        expected_lps = volume.index_to_lps([cz / SPACING[0], cy / SPACING[1], cx / SPACING[2]])
        # within half a voxel of the model grid (3 mm): what a 3 mm model can place a 5 mm sphere to
        assert np.linalg.norm(np.asarray(lesion.centroid_lps_mm) - expected_lps) < 1.5  # mm
        sphere_ml = 4 / 3 * np.pi * radius**3 / 1000
        assert lesion.volume_ml == pytest.approx(sphere_ml, rel=0.3)
        assert lesion.mean_intensity == pytest.approx(220.0, abs=15)
        assert lesion.components == 1
        # instance numbers run head first: the slice at z mm from the bottom is number 24 - z/2.5
        lo, hi = lesion.slice_range
        assert lo <= round(24 - cz / SPACING[0]) <= hi
    assert big.lesion_id == 1 and big.volume_ml > small.volume_ml


def test_an_empty_series_has_no_lesion_and_no_seg(segmenter: Segmenter, tmp_path: Path) -> None:
    hu = blob_phantom(SHAPE, SPACING, [])
    segmentation = segmenter.segment(datasets(read_all(write_ct(hu, SPACING, tmp_path))))
    assert segmentation.lesions == ()
    assert segmentation.seg(SegIdentity.fresh(), "0") is None


def test_small_islands_go_and_close_fragments_are_one_lesion(phantom_series: Series) -> None:
    source = read_series(datasets(phantom_series), ("CT",))
    mask = np.zeros(source.volume.shape, dtype=bool)
    mask[10:13, 10:14, 10:14] = True  # 48 voxels = 0.19 mL
    mask[10:13, 10:14, 18:22] = True  # 5 mm away: the same lesion
    mask[20, 40, 40] = True  # one voxel: 0.004 mL, an island
    kept = find_lesions(mask, source.volume, source.slice_numbers, min_lesion_ml=0.05, group_mm=10.0)
    [lesion] = kept.lesions
    assert lesion.components == 2 and lesion.volume_ml == pytest.approx(96 * 2.5 * 1.25 * 1.25 / 1000)
    assert kept.removed_islands == 1
    apart = find_lesions(mask, source.volume, source.slice_numbers, min_lesion_ml=0.05, group_mm=0.0)
    assert [(x.lesion_id, x.components) for x in apart.lesions] == [(1, 1), (2, 1)]


def test_a_card_that_does_not_match_its_model_is_refused(tmp_path: Path) -> None:
    folder = bright_spot_model(tmp_path / "m")
    card = json.loads((folder / CARD_FILE).read_text())
    (folder / CARD_FILE).write_text(json.dumps({**card, "sha256": "1" * 64}))
    with pytest.raises(ModelError, match="does not match its card"):
        LesionModel.load(folder)
    (folder / CARD_FILE).write_text(json.dumps({**card, "patch": [20, 48, 48]}))
    with pytest.raises(ModelError, match="multiple of 8"):
        LesionModel.load(folder)
    with pytest.raises(ModelError, match=r"lesion_seg\.onnx"):
        LesionModel.load(tmp_path / "empty")


def test_everything_the_pipeline_uses_comes_from_the_card(tmp_path: Path, phantom_series: Series) -> None:
    """A card with a lower threshold and a larger smallest lesion changes the answer."""
    strict = bright_spot_model(tmp_path / "strict", min_lesion_voxels=40)  # 40 voxels of 27 mm³ = 1.08 mL
    segmenter = Segmenter(LesionModel.load(strict), Options())
    [only] = segmenter.segment(datasets(phantom_series)).lesions  # the 0.5 mL sphere is now an island
    assert only.volume_ml > 1.5
    backend = OnnxRuntimeBackend(strict / "lesion_seg.onnx", "x", "1")
    assert backend.inputs[0].shape == (None, 1, None, None, None)
