"""What the committed lesion model finds, through the whole serving pipeline (DICOM files in,
lesions out), checked against the generator's ground truth.

Loose enough for a model trained in minutes on synthetic CT, strict enough that a broken
pipeline fails: flipped or shifted axes, a wrong intensity window, a probability resampled
onto the wrong grid or a threshold on the wrong channel all lose the lesions or their place.
"""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medgate_common.synth import SynthStudy, generate_study, write_dataset
from medgate_seg.core.model import LesionModel, weights_dir
from medgate_seg.core.pipeline import Segmentation, Segmenter


@pytest.fixture(scope="module")
def packaged() -> Segmenter:
    return Segmenter(LesionModel.load(weights_dir()))


def run(segmenter: Segmenter, folder: Path) -> Segmentation:
    return segmenter.segment([pydicom.dcmread(p) for p in sorted((folder / "dicom").glob("*.dcm"))])


def truth_labels(folder: Path) -> np.ndarray:
    return np.asarray(nib.load(folder / "labels" / "lesions.nii.gz").dataobj).transpose(2, 1, 0)


def score(segmentation: Segmentation, truth: np.ndarray) -> dict[str, float]:
    found = segmentation.lesion_map.labels
    hits = [k for k in range(1, int(truth.max()) + 1) if (found[truth == k] > 0).any()]
    false = [x.lesion_id for x in segmentation.lesions if not (truth[found == x.lesion_id] > 0).any()]
    both = int(((found > 0) & (truth > 0)).sum())
    return {
        "recall": len(hits) / max(int(truth.max()), 1),
        "false_lesions": len(false),
        "dice": 2 * both / max(int((found > 0).sum() + (truth > 0).sum()), 1),
        "volume_ratio": float((found > 0).sum()) / max(float((truth > 0).sum()), 1.0),
    }


def test_the_packaged_model_and_its_card_belong_together(packaged: Segmenter) -> None:
    card = packaged.model.card
    assert packaged.model.backend.info.sha256 == card.sha256
    assert card.modalities == ("CT",) and card.classes[card.lesion_channel] == "lesion"


def test_lesions_of_a_synthetic_ct_are_found_where_the_truth_has_them(
    packaged: Segmenter, truth_ct: tuple[SynthStudy, Path]
) -> None:
    study, folder = truth_ct
    segmentation = run(packaged, folder)
    scores = score(segmentation, truth_labels(folder))
    assert scores["recall"] >= 2 / 3, scores
    assert scores["false_lesions"] <= 3, scores
    assert scores["dice"] >= 0.5, scores
    assert 0.5 <= scores["volume_ratio"] <= 1.6, scores
    largest = max(study.truth.lesions, key=lambda lesion: lesion.volume_ml)
    nearest = min(
        segmentation.lesions, key=lambda x: np.linalg.norm(np.subtract(x.centroid_lps_mm, largest.centroid_lps_mm))
    )
    assert np.linalg.norm(np.subtract(nearest.centroid_lps_mm, largest.centroid_lps_mm)) < 10.0
    assert nearest.volume_ml == pytest.approx(largest.volume_ml, rel=0.5)
    assert nearest.slice_range[0] <= largest.slice_range[1] and largest.slice_range[0] <= nearest.slice_range[1]


def test_a_normal_study_has_next_to_no_lesion(packaged: Segmenter, tmp_path: Path) -> None:
    write_dataset(generate_study("CT", seed=2, index=3, slices=32, matrix=128, lesion_count=0), tmp_path)
    segmentation = run(packaged, tmp_path)
    assert sum(x.volume_ml for x in segmentation.lesions) < 1.0, segmentation.lesions


@pytest.mark.slow
def test_a_64_slice_study_at_scanner_resolution_segments_in_seconds(packaged: Segmenter, tmp_path: Path) -> None:
    """256x256 pixels of 1.48 mm: the model's 3 mm grid is reached by resampling, and back."""
    write_dataset(generate_study("CT", seed=3, index=0, lesion_count=4), tmp_path)
    started = time.perf_counter()
    segmentation = run(packaged, tmp_path)
    took = time.perf_counter() - started
    scores = score(segmentation, truth_labels(tmp_path))
    assert segmentation.source.volume.shape == (64, 256, 256)
    assert scores["recall"] >= 0.5 and scores["dice"] >= 0.4, scores
    assert took < 30.0, segmentation.seconds
