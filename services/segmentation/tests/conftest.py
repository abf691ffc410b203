"""Fixtures of the segmentation service tests: a stand-in ONNX model whose answer is known
(voxels brighter than 130 HU, halfway between tissue and sphere), phantom CT series written as real DICOM files, and the
committed lesion model when a test is about what the trained model finds.

The helpers that make them live in seg_fixtures.py, which tests/e2e shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from seg_fixtures import BLOBS, SHAPE, SPACING, Series, blob_phantom, bright_spot_model, read_all, write_ct

from medgate_common.synth import SynthStudy, generate_study, write_dataset
from medgate_seg.core.model import LesionModel
from medgate_seg.core.pipeline import Options, Segmenter
from medgate_seg.settings import SegSettings


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bright_spot_model(tmp_path_factory.mktemp("bright-spot"))


@pytest.fixture(scope="session")
def segmenter(model_dir: Path) -> Segmenter:
    return Segmenter(LesionModel.load(model_dir), Options(overlays=2))


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> SegSettings:
    return SegSettings(home=tmp_path / "home", weights=model_dir, overlays=2)


@pytest.fixture(scope="session")
def phantom_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """The two-sphere phantom as a CT series (files head first, as a scanner sends them)."""
    hu = blob_phantom(SHAPE, SPACING, BLOBS)
    return read_all(write_ct(hu, SPACING, tmp_path_factory.mktemp("phantom")))


@pytest.fixture(scope="session")
def truth_ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthStudy, Path]:
    """A synthetic abdominal CT with three lesions (two of them fragmented), 32 slices of
    128x128 (3 mm slices, 2.97 mm pixels: close to the model's grid), written with its truth."""
    study = generate_study("CT", seed=1, index=0, slices=32, matrix=128, lesion_count=4)
    out = tmp_path_factory.mktemp("truth_ct")
    write_dataset(study, out)
    return study, out
