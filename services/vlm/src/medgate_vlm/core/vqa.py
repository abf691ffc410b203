"""Grounded visual question answering (small V2T-CoT model) for serving: numpy + ONNX Runtime.

Contract (stable; the service API is written against it):

``load_vqa(weights_dir: Path | None = None, *, threads: int = 0) -> VqaModel``
    Loads ``vqa.onnx`` and its card ``vqa.json`` from ``weights_dir`` (default: the package's
    ``medgate_vlm/weights``) through :class:`medgate_common.inference.OnnxRuntimeBackend`.
    A missing file, an invalid card, or a card whose sha256 does not match the ONNX file
    raises :class:`medgate_common.errors.ModelError`. Load once (app lifespan), share.

``VqaModel.answer(image, modality, question, *, spacing_mm=(1.0, 1.0), slice_index=0) -> VqaResult``
    ``image``: one 2D slice, float array [rows, cols] in output units (HU for CT, signal for MR),
    any size (it is windowed by modality and resized to the model's matrix internally).
    ``modality``: ``"CT"`` or ``"MR"`` (selects the intensity window; anything else, or an
    image that is not a finite 2D array, raises :class:`medgate_common.errors.ModelInputError`).
    ``question``: free text. ``spacing_mm``: (row, col) pixel spacing of ``image``, used only
    for the area quoted in the rationale. ``slice_index``: the slice's index in its series;
    it goes into the box.

    Returns :class:`VqaResult`:
    - ``grounded``: :class:`medgate_common.schemas.reasoning.GroundedAnswer` with
      ``answer`` (a word or short phrase from the model's answer vocabulary, or
      ``CANNOT_ANSWER``; for the intents in the card's ``map_answers`` — side and size —
      read off the grounding map: the side of its peak, the bin of its area), ``rationale`` in V2T-CoT form
      ``"<rationale>…</rationale><answer>…</answer>"`` built only from the model's own
      outputs, ``confidence`` in [0, 1], and ``grounding_box`` =
      ``(slice_index, row0, col0, slice_index, row1, col1)`` (inclusive, input-image pixel
      indices) of the thresholded grounding map, or ``None`` when nothing is grounded.
    - ``heatmap``: float32 [rows, cols] in [0, 1], same size as ``image`` (the grounding map;
      all zeros when the question is not answerable or has no grounded phrase).
    - ``intent``: the question type the model recognised (``presence``, ``modality``,
      ``plane``, ``organ_involved``, ``quality``, ``location``, ``side``, ``count``, ``size``,
      ``largest_organ``) or ``"out_of_scope"``.
    - ``answerable``: False when the question is outside the model's vocabulary of findings
      (then ``grounded.answer == CANNOT_ANSWER`` and the rationale says why).
    - ``consistent``: the automatic rationale/answer agreement check on this output
      (``problems`` lists the disagreements, empty when consistent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from medgate_common import minilm
from medgate_common.errors import ModelError, ModelInputError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend, check_sha256, missing_files, read_card
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_vlm.core import rationale
from medgate_vlm.core.question import STOP, decide_scope

CANNOT_ANSWER = "cannot answer from this study"
MODEL_FILE = "vqa.onnx"
CARD_FILE = "vqa.json"
OUTPUTS = ("intent", "answer", "modality", "plane", "grounding", "key_weights")
UNITS = {"CT": "HU", "MR": "signal units"}


def package_weights_dir() -> Path:
    """The weights shipped in the package (``medgate_vlm/weights``)."""
    return Path(__file__).resolve().parents[1] / "weights"


class TextEncoderCard(BaseModel):
    """The frozen sentence encoder whose token states the model was trained on."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    package: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    max_tokens: int = Field(gt=2)
    hidden: int = Field(gt=0)


class VqaCard(BaseModel):
    """The fields of ``vqa.json`` that serving reads; the rest (data, metrics) is kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input: str
    matrix: int = Field(gt=0)
    windows: dict[str, tuple[tuple[float, float], tuple[float, float]]]
    text_encoder: TextEncoderCard
    intents: tuple[str, ...]
    answers: tuple[str, ...]
    answers_by_intent: dict[str, tuple[str, ...]]
    modalities: tuple[str, ...]
    planes: tuple[str, ...]
    grounded_intents: tuple[str, ...]
    subject_words: dict[str, tuple[str, ...]] = Field(
        description="Per intent that is about something (a finding, an organ), the words that name it: "
        "a question of that intent naming none of them but carrying an unseen word is out of scope"
    )
    known_words: tuple[str, ...]
    size_edges_mm2: tuple[float, float]
    size_bins: tuple[str, str, str]
    map_answers: tuple[str, ...] = Field(
        default=(), description="Intents answered from the grounding map itself (side of its peak, bin of its area)"
    )
    evidence_constrained: bool = Field(
        default=False,
        description="Answer with the most probable answer that the model's own evidence (image heads, "
        "grounded region) supports, instead of the answer head's first choice when the two disagree",
    )


def model_input(
    image: npt.NDArray[np.float32], window: Sequence[Sequence[float]], matrix: int
) -> npt.NDArray[np.float32]:
    """[2, matrix, matrix]: resized (linear), then mapped through both windows to [0, 1] (as in training)."""
    small = ndimage.zoom(image, (matrix / image.shape[0], matrix / image.shape[1]), order=1, mode="nearest")
    return np.stack([np.clip((small - lo) / (hi - lo), 0.0, 1.0) for lo, hi in window]).astype(np.float32)


def _softmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    e = np.exp(x.astype(np.float64) - np.max(x))
    out: npt.NDArray[np.float64] = e / e.sum()
    return out


@dataclass(frozen=True)
class VqaResult:
    grounded: GroundedAnswer
    heatmap: npt.NDArray[np.float32]
    intent: str
    answerable: bool
    consistent: bool
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class VqaModel:
    backend: ModelBackend
    card: VqaCard

    def __post_init__(self) -> None:
        check_sha256(self.backend, self.card.sha256)
        enc = self.card.text_encoder
        installed = minilm.weights_sha256()
        if installed != enc.weights_sha256:
            raise ModelError(
                f"the VQA model was trained on {enc.name} states from {enc.package}, "
                f"but the installed encoder's weights differ (sha256 {installed[:12]}…)",
                expected=enc.weights_sha256,
                installed=installed,
            )
        names = {s.name for s in self.backend.outputs}
        if self.card.input not in {s.name for s in self.backend.inputs} or not set(OUTPUTS) <= names:
            raise ModelError(f"the VQA model must take {self.card.input!r} and give {list(OUTPUTS)}")

    @property
    def scope_summary(self) -> str:
        kinds = ", ".join(i.replace("_", " ") for i in self.card.intents if i != "out_of_scope")
        return f"it answers only about focal lesions in the {', '.join(self._organs())} and about {kinds}"

    def _organs(self) -> list[str]:
        return list(self.card.answers_by_intent.get("location", ()))

    def _from_map(self, intent: str, region: rationale.Region, intent_p: float) -> tuple[str, float]:
        """The answer read off the grounded region: the patient's side of the map's peak, or the
        size bin of its area (0 mm², "small", when no region passes the threshold). On the
        validation seed these beat the answer head, whose pooled features keep position and
        extent only loosely, both where the map finds a region and where it does not."""
        if intent == "side":
            answer = rationale.patient_side(region)
        else:
            edges = np.asarray(self.card.size_edges_mm2)
            area = round(region.area_mm2)  # the whole mm² the rationale quotes
            answer = self.card.size_bins[int(np.searchsorted(edges, area, side="right"))]
        return answer, float(np.clip(intent_p * region.peak, 0.0, 1.0))

    def question_states(self, question: str) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The question's frozen encoder states [max_tokens, hidden] (zero rows past its end)
        and its word pieces, as in training (:func:`medgate_ml.vqa.text.question_states`)."""
        enc = self.card.text_encoder
        out = minilm.load().encode([question], enc.max_tokens)
        states = np.zeros((enc.max_tokens, enc.hidden), dtype=np.float32)
        states[: out.states.shape[1]] = out.states[0]
        return states, out.tokens[0]

    @staticmethod
    def _key_word(pieces: list[str], weights: npt.NDArray[np.float32]) -> str:
        """The word the key-phrase pooling weighs most, among words that can name a thing
        (not ``[CLS]``/``[SEP]``, punctuation or a stop word such as "the")."""
        words_of = [minilm.word_at(pieces, i) for i in range(len(pieces))]
        usable = np.array([any(ch.isalnum() for ch in w) and w not in STOP for w in words_of])
        if not usable.any():
            return ""
        w = np.where(usable, weights[: len(pieces)], -np.inf)
        return words_of[int(np.argmax(w))]

    def infer(
        self, image: npt.NDArray[np.float32], modality: str, question: str
    ) -> tuple[dict[str, npt.NDArray[np.float32]], list[str]]:
        """The raw model outputs for one (image, question) pair (batch axis removed) and the
        question's word pieces."""
        c = self.card
        pixels = model_input(image, c.windows[modality], c.matrix)
        states, pieces = self.question_states(question)
        packed = np.concatenate([pixels.ravel(), states.ravel()])[None].astype(np.float32)
        out = self.backend.infer({c.input: packed}).outputs
        return {name: np.asarray(out[name], dtype=np.float32)[0] for name in OUTPUTS}, pieces

    def answer(
        self,
        image: npt.NDArray[np.floating],
        modality: str,
        question: str,
        *,
        spacing_mm: tuple[float, float] = (1.0, 1.0),
        slice_index: int = 0,
    ) -> VqaResult:
        c = self.card
        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 2 or min(img.shape) < 2 or not np.isfinite(img).all():
            raise ModelInputError("the VQA model needs one finite 2D slice", shape=list(img.shape))
        modality = modality.upper()
        if modality not in c.windows:
            raise ModelInputError(f"modality {modality!r} is not one of {sorted(c.windows)}", modality=modality)
        if not any(ch.isalnum() for ch in question):
            raise ModelInputError("the question has no words")
        n_pieces = len(minilm.load().tokenizer.tokenize(question))
        if n_pieces > c.text_encoder.max_tokens - 2:  # the rest would be cut off: another question
            raise ModelInputError(
                f"the question is too long for the model: {n_pieces} word pieces, it reads at most "
                f"{c.text_encoder.max_tokens - 2} (about 15 words); ask it shorter",
                pieces=n_pieces,
            )
        out, pieces = self.infer(img, modality, question)
        intent_p = _softmax(out["intent"])
        intent = c.intents[int(np.argmax(intent_p))]
        seen_modality = c.modalities[int(np.argmax(out["modality"]))]
        plane = c.planes[int(np.argmax(out["plane"]))]
        empty = np.zeros(img.shape, dtype=np.float32)
        scope = decide_scope(
            question,
            intent,
            known_words=c.known_words,
            subject_words=c.subject_words,
            scope_summary=self.scope_summary,
        )
        if not scope.answerable:
            text = (
                f"<rationale>This is a {seen_modality} image in the {plane} plane. "
                f"No answer is given because {scope.reason}. Therefore, the answer is {CANNOT_ANSWER}."
                f"</rationale><answer>{CANNOT_ANSWER}</answer>"
            )
            grounded = GroundedAnswer(question=question, answer=CANNOT_ANSWER, rationale=text, confidence=0.0)
            return VqaResult(grounded, empty, "out_of_scope", False, True)
        allowed = [c.answers.index(a) for a in c.answers_by_intent[intent]]
        answer_p = _softmax(out["answer"][allowed])
        ranked = [int(i) for i in np.argsort(-answer_p, kind="stable")]
        answer = c.answers_by_intent[intent][ranked[0]]
        confidence = float(np.clip(intent_p.max() * answer_p.max(), 0.0, 1.0))
        region = None
        heatmap = empty
        key_phrase = ""
        if intent in c.grounded_intents:
            grid = out["grounding"][0]
            heatmap = np.clip(
                ndimage.zoom(grid, (img.shape[0] / grid.shape[0], img.shape[1] / grid.shape[1]), order=1), 0.0, 1.0
            ).astype(np.float32)
            region = rationale.measure_region(heatmap, img, spacing_mm)
            if intent in c.map_answers:
                answer, confidence = self._from_map(intent, region, float(intent_p.max()))
            key_phrase = self._key_word(pieces, out["key_weights"])

        def explain(candidate: str) -> tuple[str, list[str]]:
            text = rationale.build(
                modality=seen_modality,
                plane=plane,
                intent=intent,
                answer=candidate,
                key_phrase=key_phrase,
                region=region,
                units=UNITS.get(modality, "units"),
            )
            return text, rationale.check(text, intent, candidate, c.size_edges_mm2, c.size_bins)

        text, problems = explain(answer)
        if problems and c.evidence_constrained and intent not in c.map_answers:
            # The answer head's first choice contradicts the model's own evidence: take the most
            # probable answer that the evidence supports (if none does, keep the first and say so).
            for i in ranked[1:]:
                candidate = c.answers_by_intent[intent][i]
                text2, problems2 = explain(candidate)
                if not problems2:
                    answer, text, problems = candidate, text2, problems2
                    confidence = float(np.clip(intent_p.max() * answer_p[i], 0.0, 1.0))
                    break
        box = None
        if region is not None and region.box is not None:
            r0, c0, r1, c1 = region.box
            box = (slice_index, r0, c0, slice_index, r1, c1)
        grounded = GroundedAnswer(
            question=question, answer=answer, rationale=text, grounding_box=box, confidence=confidence
        )
        return VqaResult(grounded, heatmap, intent, True, not problems, tuple(problems))


def load_vqa(weights_dir: Path | None = None, *, threads: int = 0) -> VqaModel:
    folder = weights_dir if weights_dir is not None else package_weights_dir()
    missing = missing_files(folder, (MODEL_FILE, CARD_FILE))
    if missing:
        raise ModelError(
            f"no VQA model in {folder} ({', '.join(missing)} missing); train one with `medgate vlm train`",
            folder=str(folder),
        )
    card = read_card(folder / CARD_FILE, VqaCard)
    backend = OnnxRuntimeBackend(folder / MODEL_FILE, card.name, card.version, intra_op_threads=threads)
    return VqaModel(backend, card)
