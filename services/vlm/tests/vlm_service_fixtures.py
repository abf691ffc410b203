"""Helpers of the reasoning service's serving tests (API, step, triage, report).

* :func:`triage_model_dir` writes a triage classifier in the FL coordinator's export format
  (ONNX + card), made here with onnx.helper so that its answer is known exactly: the logits
  are ``mean(input) * W + b``.
* :class:`StandInVqa` stands in for the grounded VQA model in the API and step tests, which
  check the serving contract of ``medgate_vlm.core.vqa`` and need exact, known answers to
  assert the report's wording and evidence. The trained model itself is exercised by
  test_vqa_serving.py (its metrics on held-out data), test_lesion_site.py, test_vqa_kserve.py,
  the last test of test_api.py and the e2e step test.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper
from vlm_fixtures import SEG_MODEL, VLM_MODEL, SegmentedStudy

from medgate_common.errors import ModelInputError
from medgate_common.schemas.quality import QualityReport, QualityStatistics, StudyQualityReport, Verdict
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_common.schemas.segmentation import SegmentationResult, StudySegmentation
from medgate_common.storage import LocalStorage, sha256_file
from medgate_vlm.core.pipeline import Reasoner
from medgate_vlm.core.triage import TriageModel
from medgate_vlm.core.vqa import CANNOT_ANSWER, VqaResult
from medgate_vlm.runtime import Models

CLASSES = ("normal", "hypodense", "hyperdense", "multiple")
WEIGHTS = np.array([[0.0, 4.0, -2.0, 1.0]], dtype=np.float32)
BIAS = np.array([1.0, -1.0, 0.0, -0.5], dtype=np.float32)
WINDOW_HU = (-160.0, 240.0)
SIZE = 16
IQA_MODEL = VLM_MODEL.model_copy(update={"name": "quality-gate", "version": "2.0.0", "sha256": "ef" * 32})


def triage_model_dir(folder: Path, **card_changes: object) -> Path:
    """``triage.onnx`` + ``triage.json`` as the FL coordinator exports them (renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["mean"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "triage",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(CLASSES)])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, WEIGHTS.shape, WEIGHTS.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, BIAS.shape, BIAS.tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "triage.onnx")
    card: dict[str, object] = {
        "name": "medgate-fl-triage",
        "task": "multiclass",
        "classes": list(CLASSES),
        "input": {"name": "image", "shape": ["N", 1, SIZE, SIZE], "window_hu": list(WINDOW_HU), "resize": "area"},
        "output": {
            "name": "logits",
            "shape": ["N", len(CLASSES)],
            "meaning": "class logits (softmax for probabilities)",
        },
        "rounds": 3,
        "strategy": "fedgsca",
        "files": {"global.onnx": {"sha256": sha256_file(folder / "triage.onnx")}},
        "sha256": sha256_file(folder / "triage.onnx"),
        "exported_at": "2026-11-26T06:00:00Z",
        "note": "test model",
    }
    card.update(card_changes)
    (folder / "triage.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def expected_score(image: npt.NDArray[np.float32]) -> float:
    """What the test classifier answers for its preprocessed input."""
    logits = float(image.mean()) * WEIGHTS[0] + BIAS
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return float(1.0 - p[0])


class StandInVqa:
    """Answers from keywords, grounds on a fixed block of the slice; "fracture" is outside its
    vocabulary (the real model's "cannot answer from this study" path)."""

    info = VLM_MODEL

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def answer(
        self,
        image: npt.NDArray[np.floating],
        modality: str,
        question: str,
        *,
        spacing_mm: tuple[float, float] = (1.0, 1.0),
        slice_index: int = 0,
    ) -> VqaResult:
        if modality not in ("CT", "MR"):
            raise ModelInputError(f"the VQA model reads CT and MR, not {modality}")
        self.calls.append((question, slice_index))
        rows, cols = image.shape
        heat = np.zeros((rows, cols), dtype=np.float32)
        q = question.lower()
        if "fracture" in q:
            why = "<rationale>fractures are not among the findings I know</rationale>"
            grounded = GroundedAnswer(
                question=question,
                answer=CANNOT_ANSWER,
                rationale=f"{why}<answer>{CANNOT_ANSWER}</answer>",
                confidence=0,
            )
            return VqaResult(grounded, heat, "out_of_scope", False, True)
        intent, answer = next(
            ((i, a) for key, i, a in _KEYWORDS if key in q),
            ("presence", "yes"),
        )
        heat[rows // 4 : rows // 2, cols // 4 : cols // 2] = 0.9
        box = (slice_index, rows // 4, cols // 4, slice_index, rows // 2 - 1, cols // 2 - 1)
        rationale = f"<rationale>looked at rows {rows // 4}-{rows // 2 - 1}</rationale><answer>{answer}</answer>"
        grounded = GroundedAnswer(
            question=question, answer=answer, rationale=rationale, grounding_box=box, confidence=0.8
        )
        return VqaResult(grounded, heat, intent, True, True)


_KEYWORDS = (
    ("where", "location", "liver"),
    ("how many", "count", "2"),
    ("how large", "size", "14 mm"),
    ("is there", "presence", "yes"),
)


def models(triage_dir: Path | None = None) -> Models:
    triage = TriageModel.load(triage_dir) if triage_dir is not None else None
    note = "" if triage is not None else "no triage model is installed (test)"
    reasoner = Reasoner(StandInVqa(), VLM_MODEL, triage, note or "no triage model is installed")  # type: ignore[arg-type]
    return Models(reasoner, "", triage, note)


def quality(study: SegmentedStudy, verdict: Verdict = Verdict.good) -> StudyQualityReport:
    series = QualityReport(
        series_instance_uid=str(study.source.volume.series_instance_uid),
        modality="CT",
        findings=(),
        statistics=QualityStatistics(noise_sigma=8.0, sharpness=1.0, contrast=1.0, clipped_fraction=0.0),
        verdict=verdict,
        reasoning="Overall, the quality of this image is " + verdict.value + ".",
        model=IQA_MODEL,
    )
    return StudyQualityReport(
        study_instance_uid=str(study.seg.StudyInstanceUID),
        verdict=verdict,
        series=(series,),
        reasons=("streaks",) if verdict is Verdict.reject else (),
    )


def seg_bytes(study: SegmentedStudy) -> bytes:
    buffer = io.BytesIO()
    study.seg.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def segmentation(study: SegmentedStudy, storage: LocalStorage | None = None) -> SegmentationResult:
    """The seg service's result for the series; its SEG put in ``storage`` when given."""
    uri = storage.put_bytes("seg/seg.dcm", seg_bytes(study)) if storage is not None else None
    return SegmentationResult(
        series_instance_uid=str(study.source.volume.series_instance_uid),
        lesions=study.lesions,
        seg_uri=uri,
        model=SEG_MODEL,
    )


def study_segmentation(study: SegmentedStudy, storage: LocalStorage) -> StudySegmentation:
    return StudySegmentation(study_instance_uid=str(study.seg.StudyInstanceUID), series=(segmentation(study, storage),))
