"""The whole pipeline for one series: checked volume → model grid → sliding-window lesion
probability → back to the source grid → threshold → lesions, SEG and overlays.

The probability, not the mask, is resampled back: thresholding on the source grid keeps the
lesion outline at the source's resolution and exactly on its voxels, so the SEG written from
it cannot be misaligned with the images it refers to.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.segmentation import Lesion
from medgate_seg.core import dicom_seg, overlays
from medgate_seg.core.lesions import LesionMap, find_lesions
from medgate_seg.core.model import LesionModel
from medgate_seg.core.resample import model_shape, normalise, resample
from medgate_seg.core.series import SourceSeries, read_series
from medgate_seg.core.sliding import infer_probability


@dataclass(frozen=True)
class Options:
    """How the pipeline runs (from the service's settings); what it computes is the card's."""

    batch: int = 4
    overlap: float = 0.5
    group_mm: float = 15.0
    overlays: int = 3


@dataclass(frozen=True)
class Segmentation:
    source: SourceSeries
    lesion_map: LesionMap
    model: ModelInfo
    threshold: float
    model_grid: tuple[int, int, int]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def lesions(self) -> tuple[Lesion, ...]:
        return self.lesion_map.lesions

    @property
    def series_instance_uid(self) -> str:
        return self.source.volume.series_instance_uid

    def seg(self, identity: dicom_seg.SegIdentity, software_version: str) -> hd.seg.Segmentation | None:
        """The DICOM SEG, or None when no lesion was found (see :mod:`.dicom_seg`)."""
        if not self.lesions:
            return None
        return dicom_seg.build_seg(
            self.source.datasets,
            self.source.volume.frame_numbers,
            self.lesion_map.labels,
            self.lesions,
            self.model,
            self.threshold,
            identity,
            software_version,
        )

    def overlays(self, count: int, fallback_window: tuple[float, float]) -> list[overlays.Overlay]:
        volume = self.source.volume
        window = volume.window or fallback_window
        return overlays.overlays(
            volume.array, self.lesion_map.labels, self.lesions, self.source.slice_numbers, window, count
        )


class Segmenter:
    def __init__(self, model: LesionModel, options: Options | None = None) -> None:
        self.model = model
        self.options = options or Options()

    @property
    def window_centre_width(self) -> tuple[float, float]:
        lo, hi = self.model.card.window_hu
        return ((lo + hi) / 2.0, hi - lo)

    def probability(self, source: SourceSeries) -> tuple[npt.NDArray[np.float32], tuple[int, int, int]]:
        """Lesion probability on the source grid, and the model grid it was computed on."""
        card, volume = self.model.card, source.volume
        grid = model_shape(volume.shape, volume.spacing, card.spacing_mm)
        image = normalise(resample(volume.array, grid), card.window_hu)
        batch = self.options.batch if self.model.max_batch is None else min(self.options.batch, self.model.max_batch)
        on_model_grid = infer_probability(
            self.model.backend,
            image,
            patch=card.patch,
            input_name=card.input,
            output_name=card.output,
            channel=card.lesion_channel,
            overlap=self.options.overlap,
            batch=max(batch, 1),
        )
        return resample(on_model_grid, volume.shape), grid

    def segment_source(self, source: SourceSeries) -> Segmentation:
        card = self.model.card
        started = time.perf_counter()
        probability, grid = self.probability(source)
        inferred = time.perf_counter()
        lesion_map = find_lesions(
            probability >= card.threshold,
            source.volume,
            source.slice_numbers,
            min_lesion_ml=card.min_lesion_ml,
            group_mm=self.options.group_mm,
        )
        done = time.perf_counter()
        seconds = {"inference": round(inferred - started, 3), "lesions": round(done - inferred, 3)}
        return Segmentation(source, lesion_map, self.model.backend.info, card.threshold, grid, seconds)

    def segment(self, datasets: Sequence[Dataset]) -> Segmentation:
        """Check and read one series (any order), then segment it; raises on bad input."""
        started = time.perf_counter()
        source = read_series(datasets, self.model.card.modalities)
        read = time.perf_counter() - started
        result = self.segment_source(source)
        return dataclasses.replace(result, seconds={"read": round(read, 3), **result.seconds})
