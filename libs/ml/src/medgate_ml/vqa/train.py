"""Training loop and torch-side evaluation of the grounded VQA network.

A step takes a batch of *images* and every question asked of them, so each image is encoded
once per step however many questions it carries. Losses: intent and answer cross-entropy
(the answer's logits restricted to the gold intent's answers), modality and plane
cross-entropy per image, and — for the grounded model, on questions that have a gold mask —
BCE + soft Dice between the upsampled grounding map and the mask.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional

from medgate_ml.vqa.data import MATRIX, VqaSet
from medgate_ml.vqa.model import GroundedVqaNet
from medgate_ml.vqa.questions import ANSWERS, ANSWERS_BY_INTENT, CLOSED, INTENTS, OPEN, OUT_OF_SCOPE
from medgate_ml.vqa.text import encode_questions

MODALITIES = ("CT", "MR")
PLANES = ("axial", "sagittal", "coronal")


@dataclass(frozen=True)
class Hyper:
    epochs: int = 14
    images_per_step: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    ground_weight: float = 2.0
    token_dropout: float = 0.15
    dim: int = 48
    width: int = 16


@dataclass
class Tensors:
    pixels: torch.Tensor  # [I, 2, S, S]
    modality: torch.Tensor  # [I]
    plane: torch.Tensor  # [I]
    image: torch.Tensor  # [Q] image index per question
    states: torch.Tensor  # [U, M, H] MiniLM token states of each distinct question
    question: torch.Tensor  # [Q] row of ``states`` per question
    intent: torch.Tensor  # [Q]
    answer: torch.Tensor  # [Q], -1 for out-of-scope
    mask: torch.Tensor  # [Q, S, S] float
    has_mask: torch.Tensor  # [Q] bool
    held_out: torch.Tensor  # [Q] bool


def allowed_matrix() -> torch.Tensor:
    """[intents, answers]: 0 where the answer belongs to the intent, -1e4 elsewhere."""
    m = torch.full((len(INTENTS), len(ANSWERS)), -1e4)
    for i, intent in enumerate(INTENTS):
        for a in ANSWERS_BY_INTENT[intent]:
            m[i, ANSWERS.index(a)] = 0.0
    return m


def to_tensors(data: VqaSet) -> Tensors:
    items = data.items
    empty = np.zeros((MATRIX, MATRIX), dtype=np.float32)
    states, rows = encode_questions([it.question for it in items])
    return Tensors(
        pixels=torch.from_numpy(np.stack([im.pixels for im in data.images])),
        modality=torch.tensor([MODALITIES.index(im.modality) for im in data.images]),
        plane=torch.tensor([PLANES.index(im.plane) for im in data.images]),
        image=torch.tensor([it.image for it in items]),
        states=torch.from_numpy(states),
        question=torch.from_numpy(rows),
        intent=torch.tensor([INTENTS.index(it.intent) for it in items]),
        answer=torch.tensor([ANSWERS.index(it.answer) if it.answer else -1 for it in items]),
        mask=torch.from_numpy(np.stack([it.mask.astype(np.float32) if it.mask is not None else empty for it in items])),
        has_mask=torch.tensor([it.mask is not None for it in items]),
        held_out=torch.tensor([it.held_out for it in items]),
    )


def grounding_loss(score: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice between the upsampled logit map [B, 1, h, w] and masks [B, S, S]."""
    logits = functional.interpolate(score, size=mask.shape[-2:], mode="bilinear").squeeze(1)
    bce = functional.binary_cross_entropy_with_logits(logits, mask)
    prob = torch.sigmoid(logits)
    inter = (prob * mask).sum((1, 2))
    dice = 1.0 - (2 * inter + 1.0) / (prob.sum((1, 2)) + mask.sum((1, 2)) + 1.0)
    return bce + dice.mean()


def step_losses(net: GroundedVqaNet, t: Tensors, images: torch.Tensor, hyper: Hyper) -> dict[str, torch.Tensor]:
    v, mod_logits, plane_logits = net.encode_image(t.pixels[images])
    lookup = torch.full((t.pixels.shape[0],), -1, dtype=torch.long)
    lookup[images] = torch.arange(len(images))
    q = torch.nonzero(lookup[t.image] >= 0).squeeze(1)
    states = t.states[t.question[q]]
    if hyper.token_dropout > 0:  # drop whole tokens, so no single word carries an intent
        keep = torch.rand(states.shape[:2]) >= hyper.token_dropout
        states = states * keep.unsqueeze(-1)
    out = net.forward_pairs(v[lookup[t.image[q]]], states)
    losses = {
        "intent": functional.cross_entropy(out["intent"], t.intent[q]),
        "image": functional.cross_entropy(mod_logits, t.modality[images])
        + functional.cross_entropy(plane_logits, t.plane[images]),
    }
    answerable = t.answer[q] >= 0
    logits = out["answer"] + allowed_matrix()[t.intent[q]]
    losses["answer"] = functional.cross_entropy(logits[answerable], t.answer[q][answerable])
    grounded = t.has_mask[q]
    if net.grounded and bool(grounded.any()):
        losses["ground"] = hyper.ground_weight * grounding_loss(out["score"][grounded], t.mask[q][grounded])
    return losses


@dataclass
class TrainRun:
    net: GroundedVqaNet
    seconds: float
    history: list[dict[str, float]]


def train(
    data: VqaSet,
    hyper: Hyper,
    seed: int,
    grounded: bool = True,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainRun:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t = to_tensors(data)
    net = GroundedVqaNet(len(INTENTS), len(ANSWERS), hyper.dim, hyper.width, grounded)
    opt = torch.optim.AdamW(net.parameters(), lr=hyper.lr, weight_decay=hyper.weight_decay)
    n_images = t.pixels.shape[0]
    steps_per_epoch = max(1, n_images // hyper.images_per_step)
    total = hyper.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hyper.lr, total_steps=total, pct_start=0.15)
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    step = 0
    net.train()
    for _ in range(hyper.epochs):
        order = rng.permutation(n_images)
        sums: dict[str, float] = {}
        for b in range(steps_per_epoch):
            images = torch.from_numpy(np.sort(order[b * hyper.images_per_step : (b + 1) * hyper.images_per_step]))
            losses = step_losses(net, t, images, hyper)
            loss = sum(losses.values(), torch.zeros(()))
            opt.zero_grad()
            torch.autograd.backward(loss)
            opt.step()
            sched.step()
            step += 1
            for k, val in losses.items():
                sums[k] = sums.get(k, 0.0) + float(val.detach()) / steps_per_epoch
        history.append(sums)
        if progress is not None:
            progress(step, total, sums)
    return TrainRun(net.eval(), time.perf_counter() - start, history)


@torch.no_grad()
def predict(net: GroundedVqaNet, data: VqaSet, batch: int = 256) -> dict[str, np.ndarray]:
    """Per question: predicted intent, answer (restricted to the predicted intent), grounding map."""
    net.eval()
    t = to_tensors(data)
    allowed = allowed_matrix()
    intents, answers, maps = [], [], []
    feats = torch.cat([net.encode_image(t.pixels[s : s + batch])[0] for s in range(0, t.pixels.shape[0], batch)])
    for s in range(0, len(t.image), batch):
        idx = slice(s, s + batch)
        out = net.forward_pairs(feats[t.image[idx]], t.states[t.question[idx]])
        intent = out["intent"].argmax(1)
        intents.append(intent)
        answers.append((out["answer"] + allowed[intent]).argmax(1))
        up = functional.interpolate(out["score"], size=(MATRIX, MATRIX), mode="bilinear")
        maps.append(torch.sigmoid(up).squeeze(1))
    return {
        "intent": torch.cat(intents).numpy(),
        "answer": torch.cat(answers).numpy(),
        "map": torch.cat(maps).numpy(),
    }


def grounding_scores(maps: np.ndarray, masks: list[np.ndarray | None]) -> tuple[float, float, int]:
    """Pointing accuracy (the map's argmax inside the gold mask) and mean IoU (map ≥ 0.5)."""
    hits, ious = [], []
    for m, gold in zip(maps, masks, strict=True):
        if gold is None or not gold.any():
            continue
        hits.append(bool(gold.ravel()[int(np.argmax(m))]))
        pred = m >= 0.5
        union = np.logical_or(pred, gold).sum()
        ious.append(float(np.logical_and(pred, gold).sum() / union) if union else 0.0)
    return (float(np.mean(hits)) if hits else 0.0, float(np.mean(ious)) if ious else 0.0, len(hits))


def evaluate(net: GroundedVqaNet, data: VqaSet) -> dict[str, float]:
    pred = predict(net, data)
    items = data.items
    gold_intent = np.array([INTENTS.index(it.intent) for it in items])
    gold_answer = np.array([ANSWERS.index(it.answer) if it.answer else -1 for it in items])
    correct = (pred["intent"] == gold_intent) & (pred["answer"] == gold_answer)
    held = np.array([it.held_out for it in items])
    kind = np.array([it.intent for it in items])
    out: dict[str, float] = {}
    for name, group in (("closed", CLOSED), ("open", OPEN)):
        sel = np.isin(kind, group)
        out[f"{name}_acc"] = float(correct[sel].mean())
        out[f"{name}_acc_seen"] = float(correct[sel & ~held].mean())
        out[f"{name}_acc_held_out"] = float(correct[sel & held].mean())
    inscope = kind != OUT_OF_SCOPE
    out["acc_seen"] = float(correct[inscope & ~held].mean())
    out["acc_held_out"] = float(correct[inscope & held].mean())
    for intent in (*CLOSED, *OPEN):
        out[f"acc_{intent}"] = float(correct[kind == intent].mean())
        out[f"acc_{intent}_seen"] = float(correct[(kind == intent) & ~held].mean())
    oos_pred = pred["intent"] == INTENTS.index(OUT_OF_SCOPE)
    out["intent_acc"] = float((pred["intent"] == gold_intent).mean())
    out["intent_acc_held_out"] = float((pred["intent"] == gold_intent)[held].mean())
    out["oos_recall_intent_head"] = float(oos_pred[~inscope].mean())
    if net.grounded:
        point, iou, n = grounding_scores(pred["map"], [it.mask for it in items])
        out.update(pointing_acc=point, mean_iou=iou, grounded_questions=float(n))
    return out


def hyper_dict(hyper: Hyper) -> dict[str, float]:
    return {k: float(v) for k, v in asdict(hyper).items()}
