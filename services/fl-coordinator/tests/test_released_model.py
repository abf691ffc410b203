"""The triage model released to the reasoning service (``medgate fl train-model --release``)
is the file its card describes and still scores what the card says on held-out slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from medgate_common.storage import sha256_file
from medgate_fl import data

WEIGHTS = Path(__file__).resolve().parents[2] / "vlm" / "src" / "medgate_vlm" / "weights"


def test_the_released_triage_model_matches_its_card_and_reaches_its_accuracy(cache: Path) -> None:
    card = json.loads((WEIGHTS / "triage.json").read_text(encoding="utf-8"))
    assert sha256_file(WEIGHTS / "triage.onnx") == card["sha256"]
    assert card["input"]["window_hu"] == list(data.WINDOW_HU) and card["input"]["resize"] == "area"
    assert card["input"]["shape"][2:] == [data.SIZE, data.SIZE]
    session = ort.InferenceSession(str(WEIGHTS / "triage.onnx"), providers=["CPUExecutionProvider"])
    # The first 120 of the card's 300 held-out slices (same seed, same generator).
    test = data.held_out_data(120, int(card["run_config"]["seed"]), cache_dir=cache)
    truth = data.task_labels(test.labels, card["task"])
    (logits,) = session.run([card["output"]["name"]], {card["input"]["name"]: test.images})
    accuracy = float(np.mean(np.argmax(logits, axis=1) == truth))
    majority = float(np.bincount(truth).max() / len(truth))
    print(f"accuracy {accuracy:.3f}, majority rate {majority:.3f}, card {card['held_out_metrics']['accuracy']}")
    # Measured 0.89 on all 300 (card) and 0.875 on this 120-slice subset; floors below both.
    assert accuracy >= 0.83
    assert accuracy >= majority + 0.15
