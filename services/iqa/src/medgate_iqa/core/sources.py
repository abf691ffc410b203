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
    """Every frame of a sample DICOM file, rescaled to physical units."""
    import pydicom

    ds = pydicom.dcmread(locate(name))
    pixels = np.asarray(ds.pixel_array, dtype=np.float32)
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    frames = pixels if pixels.ndim == 3 else pixels[None]
    return [f * slope + intercept for f in frames]


def volume(name: str) -> Image:
    """A sample NIfTI volume as float32 (the first volume of a 4-D file)."""
    import nibabel

    data = np.asarray(nibabel.load(locate(name)).dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    return data if data.ndim == 3 else data[..., 0]


def _real(split: Split) -> Iterator[tuple[str, str, Image]]:
    """(modality, source, slice) of each real slice of ``split``, in a fixed order (training
    draws by index, so the order is part of what makes a run reproducible)."""
    train = split == "train"
    if train:
        yield "CT", "CT_small.dcm:0", dicom_frames("CT_small.dcm")[0]
        yield "CT", "J2K_pixelrep_mismatch.dcm:0", dicom_frames("J2K_pixelrep_mismatch.dcm")[0]
    else:
        yield "CT", "693_J2KI.dcm:0", dicom_frames("693_J2KI.dcm")[0]
    if train:
        yield "MR", "MR_small.dcm:0", dicom_frames("MR_small.dcm")[0]
    emri = dicom_frames("emri_small.dcm")
    for i in range(7) if train else range(7, 10):
        yield "MR", f"emri_small.dcm:{i}", emri[i]
    ch2 = volume("ch2.nii.gz")
    for z in range(30, 105, 3) if train else range(112, 150, 6):
        yield "MR", f"ch2.nii.gz:axial:{z}", np.rot90(ch2[:, :, z]).astype(np.float32)
    for y in range(60, 160, 8) if train else ():
        yield "MR", f"ch2.nii.gz:coronal:{y}", np.rot90(ch2[:, y, :]).astype(np.float32)
    for x in () if train else range(60, 121, 15):
        yield "MR", f"ch2.nii.gz:sagittal:{x}", np.rot90(ch2[x, :, :]).astype(np.float32)
    epi = volume("example4d.nii.gz")
    for z in range(4, 15) if train else range(16, 21):
        yield "MR", f"example4d.nii.gz:{z}", np.rot90(epi[:, :, z]).astype(np.float32)


def real_slices(split: Split) -> list[BaseSlice]:
    """Real slices of ``split``; a sample package that is not installed is skipped."""
    out: list[BaseSlice] = []
    try:
        for modality, source, image in _real(split):
            if float(np.ptp(image)) > 0:
                out.append(BaseSlice(to_grid(image), modality, f"real:{source}", True))
    except SampleDataMissingError:
        pass
    return out


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
    studies are abdomens; real CT that ships offline is two head slices, so the quality
    model also needs heads it has not memorised."""
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
