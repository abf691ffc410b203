"""What the HTTP API and the workflow worker both build from settings: the lesion model and
the segmenter around it. A missing or mismatched model stops the service at start-up with a
message naming the folder, never a service that answers "no lesion" without a model."""

from __future__ import annotations

from medgate_seg.core.model import LesionModel, weights_dir
from medgate_seg.core.pipeline import Options, Segmenter
from medgate_seg.settings import SegSettings


def build_segmenter(settings: SegSettings) -> Segmenter:
    model = LesionModel.load(settings.weights or weights_dir(), providers=settings.providers, threads=settings.threads)
    options = Options(
        batch=settings.batch, overlap=settings.overlap, group_mm=settings.group_mm, overlays=settings.overlays
    )
    return Segmenter(model, options)
