"""DICOM series for the image-quality tests, made the way bad uploads look in practice:
heavy noise, no pixel data, a thumbnail, an RGB capture, an ultrasound or a structured report.

Shared by services/iqa/tests and tests/e2e (the root conftest puts this folder on sys.path).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityFinding, QualityReport, QualityStatistics, Verdict
from medgate_common.synth import generate_study, write_dataset
from medgate_iqa.core.lexicon import TERMS

Series = list[bytes]


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def remake(series: Series, change: Callable[[Dataset], None], *, new_series: bool = True) -> Series:
    """The same instances under a new series (and new SOP) UID, each changed by ``change``."""
    uid = generate_uid()
    out = []
    for data in series:
        ds = pydicom.dcmread(io.BytesIO(data))
        if new_series:
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        change(ds)
        out.append(to_bytes(ds))
    return out


def add_noise(sigma: float, seed: int = 0) -> Callable[[Dataset], None]:
    """Gaussian noise of ``sigma`` stored units (HU for the synthetic CT) on every slice."""
    rng = np.random.default_rng(seed)

    def change(ds: Dataset) -> None:
        pixels = ds.pixel_array.astype(np.float32)
        info = np.iinfo(ds.pixel_array.dtype)
        noisy = np.clip(pixels + rng.normal(0.0, sigma, pixels.shape), info.min, info.max)
        ds.PixelData = noisy.astype(ds.pixel_array.dtype).tobytes()

    return change


def drop_pixels(ds: Dataset) -> None:
    del ds.PixelData


def thumbnail(ds: Dataset) -> None:
    small = ds.pixel_array[::8, ::8].copy()
    ds.Rows, ds.Columns = small.shape
    ds.PixelData = small.tobytes()


def rgb(ds: Dataset) -> None:
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.zeros((int(ds.Rows), int(ds.Columns), 3), np.uint8).tobytes()


def modality(name: str) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        ds.Modality = name
        if name == "SR":  # a report: no image at all
            del ds.PixelData

    return change


def synthetic_series(modality_name: str, seed: int, tmp: Path) -> Series:
    study = generate_study(modality_name, seed=seed, slices=8, matrix=128, lesion_count=1)
    write_dataset(study, tmp)
    return [p.read_bytes() for p in sorted((tmp / "dicom").glob("*.dcm"))]


def truth_report(specimen: Any, modality: str, verdict: Verdict) -> QualityReport:
    """The report a model would write had it found exactly what the simulator applied."""
    findings = tuple(
        QualityFinding(attribute=a.attribute, severity=a.level, probability=0.9, location=TERMS[a.attribute].pattern)
        for a in specimen.applied
    )
    return QualityReport(
        series_instance_uid="1.2.3",
        modality=modality,
        findings=findings,
        statistics=QualityStatistics(noise_sigma=1.0, sharpness=1.0, contrast=1.0, clipped_fraction=0.0),
        verdict=verdict,
        reasoning="-",
        model=ModelInfo(name="m", version="1", sha256="0" * 64, backend="test"),
    )
