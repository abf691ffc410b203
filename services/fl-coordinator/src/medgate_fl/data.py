"""Study-level triage data for the federated experiments: one key slice per synthetic CT study.

Each study comes from :func:`medgate_common.synth.generate_study` with the site's scanner
profile, drawn small (12 slices, a 128 matrix, so about 3 mm pixels) so that a site's few
hundred studies take seconds. The key slice is the slice holding the most lesion voxels, or
a random inner slice for a normal study; it goes through a narrow soft-tissue window
(-20..140 HU) to [0, 1] and is area-averaged down to 64x64
(:func:`medgate_common.dicom.pixels.resize_area`, the same call the reasoning service's
triage step makes).

Labels come from the generator's truth, on what the key slice shows:

* ``normal`` (0): the study has no lesion;
* ``hypodense`` (1): one lesion on the key slice, darker than its host organ;
* ``hyperdense`` (2): one lesion on the key slice, brighter than its host organ;
* ``multiple`` (3): two or more distinct lesions on the key slice.

The binary task is ``label > 0`` (lesion present). Sites are non-IID twice over: each uses
one scanner profile (noise, contrast, blur, field of view) and draws its class mix from a
Dirichlet. Arrays are cached on disk as ``.npz`` keyed by every parameter that shapes them.

Triage lesions are drawn at twice the generator's default radius (``LESION_SCALE``: 1-3 cm
masses instead of 0.5-1.6 cm nodules). Measured before that choice, with the network of
:mod:`medgate_fl.task` trained centrally on clean labels: at the default size a site-sized
training set (1,200 studies) is memorised (train accuracy 1.0) while held-out accuracy on
the binary task stays at 0.72-0.75 against a majority rate of 0.66, and the four-class task
at 0.60 against 0.47; the old -160..240 HU window and plain 2x zoom gave the majority rate
only. A label-noise experiment needs a clean upper bound well above the majority rate.

Their contrast is doubled too (``LESION_CONTRAST``: 36-120 HU from the host organ before
the scanner profile's contrast factor of 0.85-1.15, a contrast-enhanced range, instead of
18-60 HU). With the large lesions alone the pooled clean binary task peaked at 0.81 (and
fell back to 0.76 as the network memorised); with the contrast doubled it holds 0.88-0.90
from the 10th epoch on (tripled: 0.92-0.94; four-class at double: 0.74-0.75), same network,
1,200 studies, 30 epochs (docs/fl.md, "Task").
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medgate_common.dicom.pixels import resize_area
from medgate_common.synth.profiles import PROFILES
from medgate_common.synth.study import generate_study

CLASSES = ("normal", "hypodense", "hyperdense", "multiple")
BINARY_CLASSES = ("absent", "present")
WINDOW_HU = (-20.0, 140.0)
SIZE = 64
SLICES, MATRIX = 12, 128
LESION_SCALE = 2.0
LESION_CONTRAST = 2.0
#: Seeds of the generator: site data and the held-out test set never share one.
SITE_SEED, TEST_SEED = 7100, 7900

Images = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SiteData:
    """One site's images ``[N, 1, SIZE, SIZE]`` and its true labels (4 classes)."""

    site_id: int
    profile: str
    images: Images
    labels: Labels


def task_labels(labels: Labels, task: str) -> Labels:
    """The 4-class labels, or lesion present/absent for ``task == "binary"``."""
    if task == "binary":
        return (labels > 0).astype(np.int64)
    if task == "multiclass":
        return labels
    raise ValueError(f"unknown task {task!r} (binary or multiclass)")


def num_classes(task: str) -> int:
    return len(BINARY_CLASSES) if task == "binary" else len(CLASSES)


def key_slice(seed: int, index: int, profile: str, size: int = SIZE) -> tuple[Images, int]:
    """The key slice of one study (``[size, size]`` in [0, 1]) and its 4-class label."""
    study = generate_study(
        "CT",
        seed=seed,
        index=index,
        profile=profile,
        slices=SLICES,
        matrix=MATRIX,
        lesion_scale=LESION_SCALE,
        lesion_contrast=LESION_CONTRAST,
    )
    per_slice = (study.lesions > 0).reshape(study.lesions.shape[0], -1).sum(axis=1)
    if per_slice.max() > 0:
        z = int(per_slice.argmax())
        ids = [int(i) for i in np.unique(study.lesions[z]) if i > 0]
        if len(ids) >= 2:
            label = 3
        else:
            lesion = next(t for t in study.truth.lesions if t.lesion_id == ids[0])
            label = 2 if float(np.mean(lesion.contrasts)) > 0 else 1
    else:
        rng = np.random.default_rng([seed, index, 17])
        z = int(rng.integers(SLICES // 4, SLICES - SLICES // 4))
        label = 0
    return triage_image(study.hu_or_signal[z], size), label


def triage_image(image_hu: npt.NDArray[np.floating], size: int = SIZE) -> Images:
    """One slice in HU to the classifier's ``[size, size]`` input in [0, 1]."""
    lo, hi = WINDOW_HU
    return resize_area(np.clip((image_hu - lo) / (hi - lo), 0.0, 1.0), size)


def generate(seed: int, count: int, profile: str, size: int = SIZE, cache_dir: Path | None = None) -> SiteData:
    """``count`` key slices of one profile (cached when ``cache_dir`` is given)."""
    shape = f"{SLICES}-{MATRIX}-{WINDOW_HU}-{LESION_SCALE}-{LESION_CONTRAST}"
    key = hashlib.sha256(f"v3-{seed}-{count}-{profile}-{size}-{shape}".encode()).hexdigest()[:16]
    path = cache_dir / f"keyslices-{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return SiteData(-1, profile, z["images"], z["labels"])
    pairs = [key_slice(seed, i, profile, size) for i in range(count)]
    images = np.stack([p[0] for p in pairs])[:, None].astype(np.float32)
    labels = np.array([p[1] for p in pairs], dtype=np.int64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A per-process temporary name: several sites (SuperNodes) may generate the same
        # held-out set into one cache at once; the last atomic rename wins, all are equal.
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        tmp.replace(path)
    return SiteData(-1, profile, images, labels)


def site_profile(site_id: int) -> str:
    names = sorted(PROFILES)
    return names[site_id % len(names)]


def site_data(
    site_id: int,
    per_site: int,
    seed: int = 0,
    alpha: float = 1.0,
    size: int = SIZE,
    cache_dir: Path | None = None,
) -> SiteData:
    """Site ``site_id``'s studies: its profile, and a class mix drawn from Dirichlet(alpha).

    A pool twice the site's size is generated, then ``per_site`` studies are drawn without
    replacement with probability proportional to the site's class weight, so a small
    ``alpha`` gives sites dominated by one or two classes.
    """
    pool = generate(SITE_SEED + 1000 * seed + site_id, 2 * per_site, site_profile(site_id), size, cache_dir)
    rng = np.random.default_rng([seed, site_id, 23])
    mix = rng.dirichlet(np.full(len(CLASSES), alpha))
    weights = mix[pool.labels] + 1e-6
    chosen = np.sort(rng.choice(len(pool.labels), size=per_site, replace=False, p=weights / weights.sum()))
    return SiteData(site_id, pool.profile, pool.images[chosen], pool.labels[chosen])


def held_out_data(count: int, seed: int = 0, size: int = SIZE, cache_dir: Path | None = None) -> SiteData:
    """A clean held-out set across every profile (the generator's own class prior)."""
    parts = [
        generate(TEST_SEED + 1000 * seed + i, count // len(PROFILES) + 1, name, size, cache_dir)
        for i, name in enumerate(sorted(PROFILES))
    ]
    images = np.concatenate([p.images for p in parts])[:count]
    labels = np.concatenate([p.labels for p in parts])[:count]
    return SiteData(-1, "all", images, labels)
