"""The grounded VQA model's data, network and training: answers read back against the
generator's truth, phrasing splits, a few training steps, the grounding loss falling on a
tiny set, and ONNX parity of the packed graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgate_ml.export import export_onnx
from medgate_ml.vqa import data as vqa_data
from medgate_ml.vqa.data import MATRIX, VqaSet, build_set, size_bin, study_items
from medgate_ml.vqa.model import GroundedVqaNet, PackedVqa, pack
from medgate_ml.vqa.questions import (
    ANSWERS,
    ANSWERS_BY_INTENT,
    INTENTS,
    OUT_OF_SCOPE,
    out_of_scope_questions,
    phrasings,
)
from medgate_ml.vqa.text import HIDDEN, MAX_TOKENS, encode_questions, question_states
from medgate_ml.vqa.train import Hyper, grounding_loss, step_losses, to_tensors, train


@pytest.fixture(scope="module")
def tiny() -> VqaSet:
    return build_set(9100, 4, (False, True))


def test_held_out_phrasings_are_disjoint_and_training_uses_seen_ones_only() -> None:
    seen = {p.text for p in phrasings() if not p.held_out}
    held = {p.text for p in phrasings() if p.held_out}
    assert seen and held and not seen & held
    assert {p.intent for p in phrasings() if p.held_out} == set(INTENTS) - {OUT_OF_SCOPE}
    train_items = build_set(9101, 2, (False,)).items
    assert not any(it.held_out for it in train_items)
    assert not set(out_of_scope_questions(False)) & set(out_of_scope_questions(True))


def test_answers_match_the_generator_truth() -> None:
    for index in (0, 1, 2, 3):
        images, items = study_items(9102, index, (False,), 0)
        study = vqa_data._study(9102, index)
        key = images[0]
        z = int(np.argmin([np.abs(study.hu_or_signal[k] - key.raw).sum() for k in range(vqa_data.SLICES)]))
        ids, counts = np.unique(study.lesions[z][study.lesions[z] > 0], return_counts=True)
        visible = {int(i): int(n) for i, n in zip(ids, counts, strict=True) if n >= vqa_data.MIN_VISIBLE_PX}
        ask = {it.intent: it for it in items if it.image == 0}
        assert ask["presence"].answer == ("yes" if visible else "no")
        assert ask["count"].answer == ("0", "1", "2", "3+")[min(len(visible), 3)]
        assert ask["modality"].answer == study.truth.modality
        assert ask["plane"].answer == "axial"
        if visible:
            top = max(visible, key=lambda i: visible[i])
            organ = next(les.organ for les in study.truth.lesions if les.lesion_id == top).replace("_", " ")
            assert ask["location"].answer == organ
            spacing = study.grid.spacing[1] * study.grid.spacing[2]
            assert ask["size"].answer == size_bin(visible[top] * spacing)
            mask = ask["location"].mask
            assert mask is not None and mask.shape == (MATRIX, MATRIX) and mask.any()
        for it in items:
            if it.intent != OUT_OF_SCOPE:
                assert it.answer in ANSWERS_BY_INTENT[it.intent]
        assert {images[i].plane for i in range(len(images))} == {"axial", "sagittal", "coronal"}
        assert any(im.degraded for im in images)


def test_evaluation_sets_ask_every_question_in_both_phrasing_sets(tiny: VqaSet) -> None:
    held = [it for it in tiny.items if it.held_out]
    seen = [it for it in tiny.items if not it.held_out]
    assert len(held) == len(seen)
    assert [(i.image, i.intent) for i in held if i.intent != OUT_OF_SCOPE] == [
        (i.image, i.intent) for i in seen if i.intent != OUT_OF_SCOPE
    ]


def test_question_states_pad_with_zero_rows_and_share_repeated_texts() -> None:
    short, long = "is there a tumor?", " ".join(["is the liver involved by any focal lesion"] * 6)
    states = question_states([short, long])
    assert states.shape == (2, MAX_TOKENS, HIDDEN)
    real = np.abs(states).sum(-1) > 0
    assert real[0].sum() == 7  # [CLS] is there a tumor ? [SEP]
    assert not real[0, 7:].any() and real[1].all()  # a long question is cut to MAX_TOKENS
    table, rows = encode_questions([short, long, short])
    assert table.shape[0] == 2 and rows.tolist() == [0, 1, 0]
    assert np.array_equal(table, states)
    # The frozen encoder places a paraphrase nearer its meaning than another question.
    a, b, c = (question_states([t])[0].sum(0) for t in (short, "do you see a tumour?", "what plane is this?"))
    cos = lambda x, y: float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))  # noqa: E731
    assert cos(a, b) > cos(a, c) + 0.1


def test_a_few_training_steps_run_for_both_variants(tiny: VqaSet) -> None:
    for grounded in (True, False):
        run = train(tiny, Hyper(epochs=1, images_per_step=8, dim=16, width=4), seed=0, grounded=grounded)
        assert run.history and all(np.isfinite(v) for v in run.history[-1].values())
        assert ("ground" in run.history[-1]) is grounded


def test_grounding_loss_decreases_on_a_tiny_set(tiny: VqaSet) -> None:
    torch.manual_seed(0)
    hyper = Hyper(dim=16, width=4)
    net = GroundedVqaNet(len(INTENTS), len(ANSWERS), hyper.dim, hyper.width)
    t = to_tensors(tiny)
    images = torch.arange(t.pixels.shape[0])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = last = 0.0
    for step in range(25):
        loss = step_losses(net, t, images, hyper)["ground"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if step == 0 else first
        last = float(loss.detach())
    assert last < 0.8 * first


def test_grounding_loss_is_small_for_a_perfect_map() -> None:
    mask = torch.zeros(1, MATRIX, MATRIX)
    mask[0, 20:40, 20:40] = 1.0
    perfect = (mask * 40 - 20).unsqueeze(1)
    assert float(grounding_loss(perfect, mask)) < 0.01 < float(grounding_loss(-perfect, mask))


def test_onnx_export_matches_torch(tiny: VqaSet, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = GroundedVqaNet(len(INTENTS), len(ANSWERS), dim=16, width=4).eval()
    t = to_tensors(tiny)
    example = pack(t.pixels[t.image[:3]], t.states[t.question[:3]])
    other = pack(t.pixels[t.image[-2:]], t.states[t.question[-2:]])
    names = ("intent", "answer", "modality", "plane", "grounding", "key_weights")
    report = export_onnx(
        PackedVqa(net, MATRIX), example, tmp_path / "vqa.onnx", input_name="packed", output_names=names,
        check_inputs=(other,),
    )  # fmt: skip
    assert report.max_abs_diff <= 1e-4
    with torch.no_grad():
        grounding = PackedVqa(net, MATRIX)(example)[4]
    assert grounding.shape == (3, 1, MATRIX, MATRIX) and float(grounding.min()) >= 0.0
