"""Score an exported VQA model the way the service runs it: every test question through
:class:`medgate_vlm.core.vqa.VqaModel` (ONNX Runtime, numpy preprocessing, the
out-of-scope check, the rationale and its consistency check)."""

from __future__ import annotations

import numpy as np

from medgate_ml.vqa.data import VqaSet
from medgate_ml.vqa.questions import CLOSED, OPEN, OUT_OF_SCOPE
from medgate_vlm.core.vqa import CANNOT_ANSWER, VqaModel


def score_served(model: VqaModel, data: VqaSet) -> dict[str, float]:
    correct, held, kinds, refused, consistent = [], [], [], [], []
    problems: dict[str, int] = {}
    for item in data.items:
        image = data.images[item.image]
        result = model.answer(image.raw, image.modality, item.question, spacing_mm=image.pixel_mm)
        kinds.append(item.intent)
        held.append(item.held_out)
        refused.append(result.grounded.answer == CANNOT_ANSWER)
        correct.append(result.grounded.answer == item.answer)
        if result.answerable:
            consistent.append(result.consistent)
            for p in result.problems:
                key = p.split(",")[0][:60]
                problems[key] = problems.get(key, 0) + 1
    c, h, k, r = np.array(correct), np.array(held), np.array(kinds), np.array(refused)
    oos = k == OUT_OF_SCOPE
    out = {
        "served_closed_acc": float(c[np.isin(k, CLOSED)].mean()),
        "served_open_acc": float(c[np.isin(k, OPEN)].mean()),
        "served_acc_seen": float(c[~oos & ~h].mean()),
        "served_acc_held_out": float(c[~oos & h].mean()),
        "rationale_consistency": float(np.mean(consistent)) if consistent else 0.0,
        "rationales_checked": float(len(consistent)),
        "cannot_answer_precision": float(oos[r].mean()) if r.any() else 0.0,
        "cannot_answer_recall": float(r[oos].mean()),
        "cannot_answer_recall_held_out_terms": float(r[oos & h].mean()),
        "cannot_answer_false_refusals": float(r[~oos].mean()),
        "out_of_scope_questions": float(oos.sum()),
    }
    out.update({f"inconsistent: {k}": float(v) for k, v in sorted(problems.items())})
    return out
