"""Base slices the quality model learns from and is tested on: synthetic studies from
``medgate synth`` and the real images that ship offline (pydicom, pydicom-data, nibabel,
mricron-data). Real images are split by image (and by slice range for the volumes), so the
benchmark's held-out real slices never appear in training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.samples import SampleDataMissingError, locate
from medgate_iqa.core.views import Image, to_grid

Split = Literal["train", "test"]


@dataclass(frozen=True)
class BaseSlice:
    image: Image  # on the model grid, in HU (CT) or signal (MR)
    modality: str
    source: str  # e.g. "synthetic:site-a:3:12" or "real:ch2.nii.gz:axial:95"
    real: bool


def dicom_frames(name: str) -> list[Image]:
    """Every frame of a sample DICOM file in physical units, read exactly as the gate reads a
    series (``core.series.physical_frames``), so training sees what the service will see."""
    from medgate_common.dicom.io import read_dataset
    from medgate_iqa.core.series import physical_frames

    return physical_frames(read_dataset(locate(name)))


def volume(name: str) -> Image:
    """A sample NIfTI volume as float32 (the first volume of a 4-D file)."""
    import nibabel

    data = np.asarray(nibabel.load(locate(name)).dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    return data if data.ndim == 3 else data[..., 0]


# (modality, file, frames) of the real DICOM bases; None: every frame.
_DICOM: dict[Split, list[tuple[str, str, Sequence[int] | None]]] = {
    "train": [
        ("CT", "CT_small.dcm", [0]),
        ("CT", "J2K_pixelrep_mismatch.dcm", [0]),
        ("CT", "bad_sequence.dcm", [0]),  # a neck CT, small field of view
        ("MR", "MR_small.dcm", [0]),
        ("MR", "emri_small.dcm", range(7)),
        ("MR", "MR-SIEMENS-DICOM-WithOverlays.dcm", [0]),  # an abdominal MR
        ("MR", "MR2_UNCI.dcm", [0]),  # a shoulder MR, 1024 x 1024 (an 18:1 lossy copy of MR2_UNCR)
    ],
    "test": [
        ("CT", "693_J2KR.dcm", [0]),  # the lossless original (693_J2KI is a 339:1 lossy copy)
        ("CT", "explicit_VR-UN.dcm", [0]),
        ("MR", "emri_small.dcm", range(7, 10)),
    ],
}
# (file, plane, slice indices, name the plane in the source) of the real MR volumes.
_VOLUMES: dict[Split, list[tuple[str, str, Sequence[int], bool]]] = {
    "train": [
        ("ch2.nii.gz", "axial", range(30, 105, 3), True),
        ("ch2.nii.gz", "coronal", range(60, 160, 8), True),
        ("example4d.nii.gz", "axial", range(4, 15), False),
        # a macaque T1 template (0.5 mm): another brain, another contrast
        ("inia19-t1-brain.nii.gz", "axial", range(30, 100, 10), True),
    ],
    "test": [
        ("ch2.nii.gz", "axial", range(112, 150, 6), True),
        ("ch2.nii.gz", "sagittal", range(60, 121, 15), True),
        ("example4d.nii.gz", "axial", range(16, 21), False),
    ],
}
_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


def _real(split: Split) -> Iterator[tuple[str, str, Image]]:
    """(modality, source, slice) of each real slice of ``split``, in a fixed order (training
    draws by index, so the order is part of what makes a run reproducible). A file that is
    not installed is skipped on its own.

    Held out (test): the head CT 693 (any of its transfer syntaxes), the abdominal CT
    ``explicit_VR-UN``, emri_small frames 7-9, Colin27 axial 112-148 and sagittal, EPI 16-20.
    Held out is by image, not by subject, for the volumes: training has other slices of
    Colin27 (its coronal slices cross the held-out axial and sagittal ones), of emri_small
    and of the EPI. ``examples_overlay`` is a crop of ``MR-SIEMENS-DICOM-WithOverlays`` and
    is not used.
    """
    for modality, name, frames in _DICOM[split]:
        try:
            images = dicom_frames(name)
        except SampleDataMissingError:
            continue
        for i in range(len(images)) if frames is None else frames:
            yield modality, f"{name}:{i}", images[i]
    for name, plane, indices, named in _VOLUMES[split]:
        try:
            data = volume(name)
        except SampleDataMissingError:
            continue
        for k in indices:
            source = f"{name}:{plane}:{k}" if named else f"{name}:{k}"
            yield "MR", source, np.rot90(np.take(data, k, axis=_AXIS[plane])).astype(np.float32)


def real_slices(split: Split) -> list[BaseSlice]:
    """Real slices of ``split``; a sample file that is not installed is skipped."""
    return [
        BaseSlice(to_grid(image), modality, f"real:{source}", True)
        for modality, source, image in _real(split)
        if float(np.ptp(image)) > 0
    ]


SYNTH_TRAIN_SEEDS = range(40)
SYNTH_TEST_SEEDS = range(1000, 1012)


def synthetic_slices(
    split: Split, modality: str, per_study: int = 4, seeds: Sequence[int] | None = None
) -> list[BaseSlice]:
    """``per_study`` slices of each synthetic study of ``split`` (or of just ``seeds``)."""
    from medgate_common.synth.profiles import PROFILES
    from medgate_common.synth.study import generate_study

    if seeds is None:
        seeds = SYNTH_TRAIN_SEEDS if split == "train" else SYNTH_TEST_SEEDS
    profiles = sorted(PROFILES)
    out: list[BaseSlice] = []
    for seed in seeds:
        profile = profiles[seed % len(profiles)]
        study = generate_study(modality, seed=seed, profile=profile, slices=24, matrix=256)
        rng = np.random.default_rng(seed)
        for z in sorted(rng.choice(np.arange(4, 20), size=per_study, replace=False)):
            out.append(BaseSlice(to_grid(study.hu_or_signal[z]), modality, f"synthetic:{profile}:{seed}:{z}", False))
    return out


def head_phantom(rng: np.random.Generator, n: int = 256) -> Image:
    """A head CT slice in HU from random ellipses: scalp, skull (bone), brain, ventricles,
    a few small denser or darker spots; jittered so that no two are alike. The synthetic
    studies are abdomens; the real head CT that ships offline is a few slices, so the
    quality model also needs heads it has not memorised."""
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2.0) / (n / 2.0)
    image = np.full((n, n), -1000.0, dtype=np.float32)

    def ellipse(cy: float, cx: float, ry: float, rx: float, angle: float) -> npt.NDArray[np.bool_]:
        c, s = np.cos(angle), np.sin(angle)
        u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
        return np.asarray((u / rx) ** 2 + (v / ry) ** 2 <= 1.0)

    ry, rx = rng.uniform(0.7, 0.85), rng.uniform(0.55, 0.7)
    tilt = rng.uniform(-0.2, 0.2)
    image[ellipse(0, 0, ry, rx, tilt)] = rng.uniform(-80, 0)  # scalp and soft tissue
    image[ellipse(0, 0, ry - 0.03, rx - 0.03, tilt)] = rng.uniform(700, 1400)  # skull
    brain = rng.uniform(25, 40)
    image[ellipse(0, 0, ry - 0.09, rx - 0.09, tilt)] = brain
    for _ in range(int(rng.integers(2, 5))):  # ventricles and sulci (CSF)
        image[
            ellipse(
                rng.uniform(-0.2, 0.2),
                rng.uniform(-0.2, 0.2),
                rng.uniform(0.05, 0.2),
                rng.uniform(0.03, 0.1),
                rng.uniform(0, np.pi),
            )
        ] = rng.uniform(0, 12)
    for _ in range(int(rng.integers(0, 3))):  # calcifications or bleeds
        image[ellipse(rng.uniform(-0.4, 0.4), rng.uniform(-0.35, 0.35), 0.03, 0.03, 0.0)] = rng.uniform(50, 120)
    texture = ndimage.gaussian_filter(rng.normal(0, 6, (n, n)), 2.0) + rng.normal(0, rng.uniform(2, 8), (n, n))
    head = image > -500
    image[head] += texture[head].astype(np.float32)
    smooth: Image = ndimage.gaussian_filter(image, rng.uniform(0.5, 1.0)).astype(np.float32)
    return smooth


def synthetic_heads(split: Split, count: int = 60) -> list[BaseSlice]:
    seed = 0 if split == "train" else 1000
    rng = np.random.default_rng(seed)
    return [BaseSlice(to_grid(head_phantom(rng)), "CT", f"synthetic:head:{seed}:{i}", False) for i in range(count)]


def base_slices(split: Split) -> list[BaseSlice]:
    return [
        *synthetic_slices(split, "CT"),
        *synthetic_heads(split),
        *synthetic_slices(split, "MR"),
        *real_slices(split),
    ]
