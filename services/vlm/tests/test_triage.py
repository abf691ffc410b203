"""Triage: the FL coordinator's exported classifier (ONNX + card, here a small model with a
known answer) loaded through the ONNX Runtime backend with its sha256 checked, fed the key
slice the way the card says, scored as 1 - p(normal); a card for other weights, or without a
normal first class, is refused; without the files triage is unavailable, never invented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from vlm_fixtures import SegmentedStudy
from vlm_service_fixtures import CLASSES, SIZE, WINDOW_HU, expected_score, triage_model_dir

from medgate_common.errors import ModelError, ModelInputError, NotReadyError
from medgate_vlm.core.study import key_slice, lesion_labels, read_series
from medgate_vlm.core.triage import TriageModel, preprocess
from medgate_vlm.runtime import load_models
from medgate_vlm.settings import VlmSettings


@pytest.fixture(scope="module")
def triage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return triage_model_dir(tmp_path_factory.mktemp("triage"))


def test_the_input_is_the_windowed_key_slice_resized_to_the_card(segmented: SegmentedStudy) -> None:
    image = segmented.source.volume.array[5]
    x = preprocess(image, WINDOW_HU, SIZE)
    assert x.shape == (1, 1, SIZE, SIZE) and x.dtype == np.float32
    unit = np.clip((image - WINDOW_HU[0]) / (WINDOW_HU[1] - WINDOW_HU[0]), 0, 1)
    # The FL data's own preprocessing: area averaging, i.e. block means for an integer factor.
    f = image.shape[0] // SIZE
    assert image.shape == (SIZE * f, SIZE * f)
    expected = unit.reshape(SIZE, f, SIZE, f).mean(axis=(1, 3))
    np.testing.assert_allclose(x[0, 0], expected, atol=1e-5)
    assert x.min() >= 0.0 and x.max() <= 1.0
    wide = preprocess(np.zeros((40, 80)), WINDOW_HU, SIZE)  # a non-square matrix still fills the input
    assert wide.shape == (1, 1, SIZE, SIZE) and np.allclose(wide, 0.4)
    with pytest.raises(ModelInputError, match="2-D slice"):
        preprocess(np.zeros((3, 4, 5)), WINDOW_HU, SIZE)


def test_the_key_slice_is_the_largest_lesion_area_else_the_middle(segmented: SegmentedStudy) -> None:
    series = read_series(list(segmented.source.datasets))
    labels = lesion_labels(segmented.seg, series, [lesion.lesion_id for lesion in segmented.lesions])
    np.testing.assert_array_equal(labels, segmented.labels)  # the SEG read back onto the source grid
    key = key_slice(labels, series.depth)
    area = np.count_nonzero(segmented.labels.reshape(series.depth, -1), axis=1)
    assert key.index == int(np.argmax(area)) and "largest lesion area" in key.reason
    middle = key_slice(np.zeros_like(labels), series.depth)
    assert middle.index == series.depth // 2 and "middle" in middle.reason
    assert key_slice(None, 7).index == 3


def test_the_score_is_one_minus_p_normal_on_the_key_slice(triage_dir: Path, segmented: SegmentedStudy) -> None:
    model = TriageModel.load(triage_dir)
    series = read_series(list(segmented.source.datasets))
    key = key_slice(segmented.labels, series.depth)
    scored = model.score(series.volume.array, key)
    x = preprocess(series.volume.array[key.index], WINDOW_HU, SIZE)
    assert scored.score.score == pytest.approx(expected_score(x), abs=1e-5)
    assert scored.score.label in CLASSES and scored.key_slice == key
    info = scored.score.model
    assert (info.name, info.version, info.backend) == ("medgate-fl-triage", "2026-11-26T06:00:00Z", "onnxruntime")
    assert info.sha256 == json.loads((triage_dir / "triage.json").read_text())["sha256"]
    # a darker slice gives another, still exact, score
    dark = model.score(np.full((3, 32, 32), -500.0), key_slice(None, 3))
    assert dark.score.score == pytest.approx(expected_score(np.zeros((1, 1, SIZE, SIZE), np.float32)), abs=1e-5)


def test_a_card_that_does_not_describe_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not match its card"):
        TriageModel.load(triage_model_dir(tmp_path / "sha", sha256="0" * 64))
    with pytest.raises(ModelError, match="normal one"):
        TriageModel.load(triage_model_dir(tmp_path / "classes", classes=["hypodense", "normal"]))
    with pytest.raises(ModelError, match="tensors"):
        TriageModel.load(
            triage_model_dir(
                tmp_path / "names",
                input={"name": "x", "shape": ["N", 1, SIZE, SIZE], "window_hu": [0, 1], "resize": "area"},
            )
        )
    with pytest.raises(ModelError, match=r"its card lists 2"):
        TriageModel.load(triage_model_dir(tmp_path / "width", classes=["normal", "abnormal"]))
    with pytest.raises(ModelError, match=r"triage\.onnx"):
        TriageModel.load(tmp_path / "nothing")


def test_without_its_files_triage_is_unavailable_and_says_why(tmp_path: Path, triage_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    models = load_models(VlmSettings(home=tmp_path), packaged=empty)
    assert models.triage is None and "no triage model" in models.triage_note
    with pytest.raises(NotReadyError, match="no triage model"):
        models.require_triage()
    # the VQA model is not there either: nothing is drafted, and the reason is given
    assert models.reasoner is None and "VQA" in models.vqa_note
    with pytest.raises(NotReadyError, match="VQA"):
        models.require_reasoner()
    assert load_models(VlmSettings(home=tmp_path), packaged=triage_dir).triage is not None


def test_without_the_question_encoder_vqa_waits_and_triage_still_serves(
    tmp_path: Path, triage_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medgate_common import minilm
    from medgate_vlm.core.vqa import package_weights_dir

    folder = tmp_path / "both"
    shutil.copytree(triage_dir, folder)
    for name in ("vqa.onnx", "vqa.json"):
        shutil.copy(package_weights_dir() / name, folder / name)
    monkeypatch.setenv(minilm.ENV_DIR, str(tmp_path / "no-encoder"))
    models = load_models(VlmSettings(home=tmp_path, weights=folder))
    assert models.reasoner is None and "question encoder is missing" in models.vqa_note
    assert models.triage is not None
    with pytest.raises(NotReadyError, match="question encoder"):
        models.require_reasoner()
