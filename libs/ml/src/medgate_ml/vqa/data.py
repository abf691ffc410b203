"""VQA items from synthetic studies: one 2D image, one question, the gold answer and the gold
grounding mask, all read from the generator's truth (never from a model).

Per study (CT abdomen or MR brain, alternating by index): the axial key slice (the one where
a lesion is largest, or a middle slice for a normal study), a second random axial slice, a
degraded copy of the key slice (noise and/or blur strong enough that the quality answer is
known to be "no"), and sagittal and coronal reformats through the volume's centre. Lesion
questions (presence, count, location, side, size, organ involvement) are asked of axial
slices only; a lesion counts as visible on a slice from ``MIN_VISIBLE_PX`` pixels.

Seeds split the data: training, validation and test studies never share a generator seed.
Training uses seen phrasings only; validation and test ask every question twice, once in a
seen and once in a held-out phrasing, so the two accuracies compare like with like.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.synth.profiles import PROFILES
from medgate_common.synth.study import SynthStudy, generate_study
from medgate_ml.vqa.questions import (
    CT_ORGANS,
    LESION_ORGANS,
    MR_ORGANS,
    OUT_OF_SCOPE,
    SIZE_BINS,
    SIZE_EDGES_MM2,
    Phrasing,
    fill_organ,
    out_of_scope_questions,
    phrasings,
)

MATRIX = 64  # the model's input size
GEN_MATRIX, SLICES = 96, 32
#: (wide, narrow) windows per modality: the wide one shows anatomy, the narrow one lesions.
WINDOWS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "CT": ((-160.0, 240.0), (-20.0, 140.0)),
    "MR": ((0.0, 1200.0), (400.0, 1000.0)),
}
AIR = {"CT": -1000.0, "MR": 0.0}
MIN_VISIBLE_PX = 6  # at GEN_MATRIX
TRAIN_SEED, VAL_SEED, TEST_SEED = 8100, 8200, 8300


def model_input(image: npt.NDArray[np.floating], modality: str) -> npt.NDArray[np.float32]:
    """[2, MATRIX, MATRIX]: the slice resized (linear) and mapped through both windows to [0, 1].
    ``medgate_vlm.core.vqa`` does exactly this at serving time."""
    img = np.asarray(image, dtype=np.float32)
    small = ndimage.zoom(img, (MATRIX / img.shape[0], MATRIX / img.shape[1]), order=1, mode="nearest")
    chans = [np.clip((small - lo) / (hi - lo), 0.0, 1.0) for lo, hi in WINDOWS[modality]]
    return np.stack(chans).astype(np.float32)


def resize_mask(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    m = mask.astype(np.float32)
    small = np.asarray(ndimage.zoom(m, (MATRIX / m.shape[0], MATRIX / m.shape[1]), order=1, mode="nearest"))
    out: npt.NDArray[np.uint8] = (small >= 0.4).astype(np.uint8)
    return out


@dataclass(frozen=True)
class VqaImage:
    pixels: npt.NDArray[np.float32]  # [2, MATRIX, MATRIX]
    raw: npt.NDArray[np.float32]  # the slice in output units (HU / signal), GEN_MATRIX²
    modality: str
    plane: str
    degraded: bool
    pixel_mm: tuple[float, float]  # of ``raw``
    study: str


@dataclass(frozen=True)
class VqaItem:
    image: int
    question: str
    intent: str
    answer: str  # "" for out-of-scope questions
    mask: npt.NDArray[np.uint8] | None  # [MATRIX, MATRIX] gold grounding, None if not grounded
    held_out: bool


@dataclass
class VqaSet:
    images: list[VqaImage]
    items: list[VqaItem]


class _Phrases:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.by: dict[tuple[str, bool], list[Phrasing]] = {}
        for p in phrasings():
            self.by.setdefault((p.intent, p.held_out), []).append(p)

    def pick(self, intent: str, held_out: bool, organ: str | None = None) -> str:
        pool = self.by[(intent, held_out)]
        text = pool[int(self.rng.integers(len(pool)))].text
        return fill_organ(text, organ, int(self.rng.integers(3))) if organ else text


def _study(seed: int, index: int) -> SynthStudy:
    modality = "CT" if index % 2 == 0 else "MR"
    name = sorted(PROFILES)[index % len(PROFILES)]
    profile = dataclasses.replace(PROFILES[name], slice_thickness_mm=3.0)
    return generate_study(modality, seed=seed, index=index, profile=profile, slices=SLICES, matrix=GEN_MATRIX)


def _degrade(raw: npt.NDArray[np.float32], modality: str, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    kind = int(rng.integers(3))  # 0 noise, 1 blur, 2 both
    out = raw.copy()
    if kind in (1, 2):
        out = ndimage.gaussian_filter(out, float(rng.uniform(1.8, 3.0)))
    if kind in (0, 2):
        lo, hi = WINDOWS[modality][1]
        out = out + rng.standard_normal(out.shape).astype(np.float32) * float(rng.uniform(0.5, 0.9)) * (hi - lo)
    return out.astype(np.float32)


def _reformat(study: SynthStudy, plane: str) -> npt.NDArray[np.float32]:
    """A sagittal or coronal slice through the centre, resampled to square pixels and padded."""
    vol = study.hu_or_signal
    sz, sy, _ = study.grid.spacing
    cut = vol[:, :, vol.shape[2] // 2] if plane == "sagittal" else vol[:, vol.shape[1] // 2, :]
    strip = ndimage.zoom(cut, (sz / sy, 1.0), order=1)
    out = np.full((cut.shape[1], cut.shape[1]), AIR[study.truth.modality], dtype=np.float32)
    top = (out.shape[0] - strip.shape[0]) // 2
    out[top : top + strip.shape[0]] = strip
    return out


def size_bin(area_mm2: float) -> str:
    return SIZE_BINS[int(np.searchsorted(np.asarray(SIZE_EDGES_MM2), area_mm2, side="right"))]


def _organ_name(raw_name: str) -> str:
    return raw_name.replace("_", " ")


def _axial_questions(
    study: SynthStudy, z: int, image: int, phrases: _Phrases, held: Sequence[bool], rng: np.random.Generator
) -> list[VqaItem]:
    truth = study.truth
    modality = truth.modality
    lesion_slice, organ_slice = study.lesions[z], study.organs[z]
    px_mm2 = study.grid.spacing[1] * study.grid.spacing[2]
    organ_of = {les.lesion_id: _organ_name(les.organ) for les in truth.lesions}
    ids, sizes = np.unique(lesion_slice[lesion_slice > 0], return_counts=True)
    visible = [(int(i), int(n)) for i, n in zip(ids, sizes, strict=True) if n >= MIN_VISIBLE_PX]
    visible.sort(key=lambda t: -t[1])
    label_of = {_organ_name(v): k for k, v in truth.organ_labels.items()}
    all_lesions = resize_mask(np.isin(lesion_slice, [i for i, _ in visible])) if visible else None
    out: list[VqaItem] = []

    def add(intent: str, answer: str, mask: npt.NDArray[np.uint8] | None, organ: str | None = None) -> None:
        for h in held:
            out.append(VqaItem(image, phrases.pick(intent, h, organ), intent, answer, mask, h))

    add("presence", "yes" if visible else "no", all_lesions)
    add("count", ("0", "1", "2", "3+")[min(len(visible), 3)], all_lesions)
    areas = {o: int((organ_slice == label_of[o]).sum()) for o in (CT_ORGANS if modality == "CT" else MR_ORGANS)}
    biggest = max(areas, key=lambda o: areas[o])
    add("largest_organ", biggest, resize_mask(organ_slice == label_of[biggest]))
    involved = {organ_of[i] for i, _ in visible}
    candidates = list(LESION_ORGANS[modality]) + (["grey matter"] if modality == "MR" else [])
    for organ in rng.permutation(candidates)[:2]:
        organ_mask = organ_slice == label_of[str(organ)]
        mask = resize_mask(organ_mask) if organ_mask.sum() >= MIN_VISIBLE_PX else None
        add("organ_involved", "yes" if organ in involved else "no", mask, str(organ))
    if visible:
        top_id, top_px = visible[0]
        top = lesion_slice == top_id
        top_mask = resize_mask(top)
        add("location", organ_of[top_id], top_mask)
        col = float(np.nonzero(top)[1].mean())
        add("side", "left" if col >= lesion_slice.shape[1] / 2 else "right", top_mask)  # radiological view
        add("size", size_bin(top_px * px_mm2), top_mask)
    return out


def study_items(seed: int, index: int, held: Sequence[bool], start: int) -> tuple[list[VqaImage], list[VqaItem]]:
    """The images of one study and every question about them; image indices start at ``start``."""
    study = _study(seed, index)
    rng = np.random.default_rng([seed, index, 17])
    phrases = _Phrases(rng)
    modality = study.truth.modality
    spacing = (study.grid.spacing[1], study.grid.spacing[2])
    name = f"{seed}-{index}"
    per_slice = np.array([np.bincount(s[s > 0].ravel()).max(initial=0) for s in study.lesions])
    if per_slice.max() >= MIN_VISIBLE_PX:
        good = np.nonzero(per_slice >= 0.5 * per_slice.max())[0]
        key = int(rng.choice(good))
    else:
        key = int(rng.integers(SLICES // 4, 3 * SLICES // 4))
    other = int(rng.integers(3, SLICES - 3))
    images: list[VqaImage] = []
    items: list[VqaItem] = []

    def image(raw: npt.NDArray[np.float32], plane: str, degraded: bool = False) -> int:
        raw = raw.astype(np.float32)
        images.append(VqaImage(model_input(raw, modality), raw, modality, plane, degraded, spacing, name))
        return start + len(images) - 1

    def ask(img: int, intent: str, answer: str) -> None:
        for h in held:
            items.append(VqaItem(img, phrases.pick(intent, h), intent, answer, None, h))

    for z in (key, other):
        i = image(study.hu_or_signal[z], "axial")
        items += _axial_questions(study, z, i, phrases, held, rng)
        ask(i, "modality", modality)
        ask(i, "plane", "axial")
    ask(start, "quality", "yes")
    bad = image(_degrade(study.hu_or_signal[key], modality, rng), "axial", degraded=True)
    ask(bad, "quality", "no")
    ask(bad, "modality", modality)
    for plane in ("sagittal", "coronal"):
        i = image(_reformat(study, plane), plane)
        ask(i, "plane", plane)
        ask(i, "modality", modality)
        ask(i, "quality", "yes")
    oos = out_of_scope_questions(held_out=False)
    for h in held:
        pool = out_of_scope_questions(held_out=True) if h else oos
        q = pool[int(rng.integers(len(pool)))]
        items.append(VqaItem(start + int(rng.integers(len(images))), q, OUT_OF_SCOPE, "", None, h))
    return images, items


def build_set(seed: int, count: int, held: Sequence[bool] = (False,)) -> VqaSet:
    """``count`` studies of generator seed ``seed``; ``held`` says which phrasing sets to ask in."""
    out = VqaSet([], [])
    for index in range(count):
        images, items = study_items(seed, index, held, len(out.images))
        out.images += images
        out.items += items
    return out


def training_set(count: int) -> VqaSet:
    return build_set(TRAIN_SEED, count, (False,))


def evaluation_set(count: int, seed: int = TEST_SEED) -> VqaSet:
    return build_set(seed, count, (False, True))
