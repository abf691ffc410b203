"""The committed grounded VQA model through the serving path (ONNX Runtime, numpy, no torch):
it reaches its card's metrics (floors a little below the measured ones) on a small
held-out set, every rationale agrees with its answer, questions outside its findings get
"cannot answer", bad input gets a clear error, the question states match training's, and a
different sentence encoder is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medgate_common.errors import ModelError, ModelInputError
from medgate_ml.vqa.data import TEST_SEED, VqaSet, build_set
from medgate_ml.vqa.questions import out_of_scope_questions, phrasings
from medgate_ml.vqa.text import question_states
from medgate_vlm.core import rationale
from medgate_vlm.core.vqa import CANNOT_ANSWER, CARD_FILE, MODEL_FILE, VqaModel, load_vqa, package_weights_dir
from medgate_vlm.training.served import score_served


@pytest.fixture(scope="module")
def model() -> VqaModel:
    return load_vqa()


@pytest.fixture(scope="module")
def held_out() -> VqaSet:
    # Test studies of the held-out generator seed (the card's numbers use 80 of them).
    return build_set(TEST_SEED, 12, (False, True))


def test_serving_question_states_match_training(model: VqaModel) -> None:
    """Both sides call medgate_common.minilm, training in batches of many questions, serving
    one at a time: this catches a padding or batching difference, not an encoder error
    (tests/test_minilm.py checks the encoder against published numbers)."""
    texts = [p.text for p in phrasings()][::7] + out_of_scope_questions(True)[:5] + ["Is there a TUMOUR in the liver?!"]
    trained = question_states(texts)
    for text, expected in zip(texts, trained, strict=True):
        got, pieces = model.question_states(text)
        # training encodes in batches, serving one question: float rounding differs, ~1e-6
        assert np.allclose(got, expected, atol=1e-5) and ((got != 0) == (expected != 0)).all(), text
        assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"


def test_a_model_trained_on_another_encoder_is_refused(tmp_path: Path) -> None:
    for name in (MODEL_FILE, CARD_FILE):
        shutil.copy(package_weights_dir() / name, tmp_path / name)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["text_encoder"]["weights_sha256"] = "1" * 64
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="installed encoder"):
        load_vqa(tmp_path)


def test_committed_weights_reach_their_metrics(model: VqaModel, held_out: VqaSet) -> None:
    got = score_served(model, held_out)
    card = json.loads((package_weights_dir() / CARD_FILE).read_text())["served_test_metrics"]
    assert got["served_closed_acc"] >= card["served_closed_acc"] - 0.08
    assert got["served_open_acc"] >= card["served_open_acc"] - 0.12
    assert got["served_acc_held_out"] >= card["served_acc_held_out"] - 0.12
    assert got["rationale_consistency"] >= card["rationale_consistency"] - 0.05
    assert got["cannot_answer_recall"] >= 0.8 and got["cannot_answer_false_refusals"] <= 0.1


def test_answer_carries_rationale_heatmap_and_box(model: VqaModel, held_out: VqaSet) -> None:
    items = [it for it in held_out.items if it.intent == "location"]
    results = [
        (held_out.images[it.image], model.answer(
            held_out.images[it.image].raw, held_out.images[it.image].modality, it.question,
            spacing_mm=held_out.images[it.image].pixel_mm, slice_index=7,
        ))
        for it in items
    ]  # fmt: skip
    boxed = [(image, result) for image, result in results if result.grounded.grounding_box is not None]
    assert len(boxed) >= 0.7 * len(results)  # most location answers point somewhere
    image, result = boxed[0]
    assert result.answerable and result.intent == "location"
    assert result.heatmap.shape == image.raw.shape and result.heatmap.dtype == np.float32
    assert float(result.heatmap.min()) >= 0.0 and float(result.heatmap.max()) <= 1.0
    text = result.grounded.rationale
    assert text.startswith("<rationale>This is a ") and text.endswith(f"<answer>{result.grounded.answer}</answer>")
    box = result.grounded.grounding_box
    assert box is not None and box[0] == box[3] == 7
    assert result.heatmap[box[1] : box[4] + 1, box[2] : box[5] + 1].max() >= rationale.GROUND_THRESHOLD
    assert 0.0 <= result.grounded.confidence <= 1.0


@pytest.mark.parametrize(
    "question",
    ["Is there a fracture?", "Is there any pneumothorax on this scan?", "Where is the ascites?",
     "How severe is the hydronephrosis?", "What is the patient's age?"],
)  # fmt: skip
def test_questions_outside_the_findings_are_not_answered(model: VqaModel, held_out: VqaSet, question: str) -> None:
    image = held_out.images[0]
    result = model.answer(image.raw, image.modality, question)
    assert not result.answerable
    assert result.grounded.answer == CANNOT_ANSWER
    assert "because" in result.grounded.rationale and result.grounded.confidence == 0.0
    assert not result.heatmap.any()


def test_rationale_check_catches_disagreement() -> None:
    region = rationale.Region(0.9, 0.5, 0.2, 300.0, 1, 20.0, 60.0, (1, 2, 3, 4))
    text = rationale.build(
        modality="CT", plane="axial", intent="side", answer="left", key_phrase="lesion", region=region, units="HU"
    )
    problems = rationale.check(text, "side", "left", (120.0, 280.0), ("small", "medium", "large"))
    assert problems == ["the stated side is not the answer"]  # the map points to the patient's right
    text = rationale.build(
        modality="CT", plane="axial", intent="size", answer="large", key_phrase="mass", region=region, units="HU"
    )
    assert rationale.check(text, "size", "large", (120.0, 280.0), ("small", "medium", "large")) == []
    assert rationale.check("yes", "presence", "yes", (1.0, 2.0), ("a", "b", "c"))


def test_questions_without_words_or_too_long_are_refused(model: VqaModel) -> None:
    image = np.zeros((32, 32), dtype=np.float32)
    for question in ("?", "  ...  "):
        with pytest.raises(ModelInputError, match="no words"):
            model.answer(image, "CT", question)
    long = (
        "For this 67 year old patient with a known history of colorectal carcinoma and rising "
        "tumour markers, which organ holds the largest lesion?"
    )  # cut to its first 22 word pieces it would ask something else
    with pytest.raises(ModelInputError, match="too long"):
        model.answer(image, "CT", long)
    assert model.answer(image, "CT", "Which organ holds the largest lesion?").answerable


def test_bad_input_gets_a_clear_error(model: VqaModel) -> None:
    with pytest.raises(ModelInputError):
        model.answer(np.zeros((4, 8, 8)), "CT", "is there a lesion?")
    with pytest.raises(ModelInputError):
        model.answer(np.zeros((8, 8)), "US", "is there a lesion?")
    with pytest.raises(ModelInputError):
        model.answer(np.full((8, 8), np.nan), "CT", "is there a lesion?")


def test_a_card_that_does_not_match_the_weights_is_refused(tmp_path: Path) -> None:
    shutil.copy(package_weights_dir() / MODEL_FILE, tmp_path / MODEL_FILE)
    card = json.loads((package_weights_dir() / CARD_FILE).read_text())
    (tmp_path / CARD_FILE).write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="does not match"):
        load_vqa(tmp_path)
    with pytest.raises(ModelError, match="missing"):
        load_vqa(tmp_path / "nothing")


def test_committed_onnx_matches_the_committed_torch_weights(model: VqaModel, held_out: VqaSet) -> None:
    import torch

    from medgate_ml.vqa.model import GroundedVqaNet, PackedVqa, pack
    from medgate_ml.vqa.questions import ANSWERS, INTENTS
    from medgate_ml.vqa.train import to_tensors

    card = json.loads((package_weights_dir() / CARD_FILE).read_text())
    hyper = card["training"]["hyper"]
    net = GroundedVqaNet(len(INTENTS), len(ANSWERS), int(hyper["dim"]), int(hyper["width"]))
    net.load_state_dict(torch.load(package_weights_dir() / "vqa.pt", map_location="cpu", weights_only=True))
    t = to_tensors(held_out)
    packed = pack(t.pixels[t.image[:16]], t.states[t.question[:16]])
    with torch.no_grad():
        expected = PackedVqa(net.eval(), card["matrix"])(packed)
    got = model.backend.infer({card["input"]: packed.numpy()}).outputs
    for name, e in zip(("intent", "answer", "modality", "plane", "grounding", "key_weights"), expected, strict=True):
        assert float(np.max(np.abs(np.asarray(got[name]) - e.numpy()))) <= 1e-4, name


def test_the_human_model_card_is_the_machine_card_written_out() -> None:
    from medgate_vlm.training.model import HUMAN_CARD, human_card

    card = json.loads((package_weights_dir() / CARD_FILE).read_text())
    assert (package_weights_dir() / HUMAN_CARD).read_text() == human_card(card)
    assert card["served_test_metrics"]["rationale_consistency"] == 1.0  # every test-set rationale agrees
