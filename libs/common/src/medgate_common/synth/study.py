"""One synthetic study: phantom, lesions, image formation, DICOM and ground truth."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.dicom.geometry import lps_to_ras
from medgate_common.synth.anatomy import Tissue, ct_abdomen, mr_brain, tissues
from medgate_common.synth.dicom_writer import SeriesHeader, derived_uid, write_series
from medgate_common.synth.lesions import draw_lesion_count, place_lesions
from medgate_common.synth.profiles import PROFILES, ScannerProfile
from medgate_common.synth.shapes import Grid, smooth_field

MODALITIES = ("CT", "MR")
_FIRST_NAMES = ("ALEX", "SAM", "ROBIN", "KIM", "NOOR", "JULES", "ARI", "EMIL")


@dataclass(frozen=True)
class LesionTruth:
    lesion_id: int
    organ: str
    voxels: int
    volume_ml: float
    components: int
    centroid_lps_mm: tuple[float, float, float]
    slice_range: tuple[int, int]  # instance numbers (1-based, head first) that contain it
    contrasts: tuple[float, ...]


@dataclass(frozen=True)
class StudyTruth:
    """Study-level labels, written as study.json beside the series."""

    study_instance_uid: str
    series_instance_uid: str
    modality: str
    profile: str
    seed: int
    index: int
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    lesion_present: bool
    lesion_count: int
    lesions: tuple[LesionTruth, ...]
    organ_labels: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthStudy:
    header: SeriesHeader
    grid: Grid
    hu_or_signal: npt.NDArray[np.float32]  # output units before storage encoding
    stored: npt.NDArray[np.int16] | npt.NDArray[np.uint16]
    organs: npt.NDArray[np.uint8]
    lesions: npt.NDArray[np.uint16]
    truth: StudyTruth

    @property
    def affine_lps(self) -> npt.NDArray[np.float64]:
        out = np.diag([self.grid.spacing[2], self.grid.spacing[1], self.grid.spacing[0], 1.0])
        out[:3, 3] = self.grid.origin
        return out


def _form_image(
    organs: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.float32],
    table: tuple[Tissue, ...],
    modality: str,
    profile: ScannerProfile,
    grid: Grid,
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    values = np.array([t.value for t in table], dtype=np.float32)
    textures = np.array([t.texture for t in table], dtype=np.float32)
    reference = 40.0 if modality == "CT" else 600.0
    soft = values > (-300.0 if modality == "CT" else 150.0)
    values = np.where(soft, reference + (values - reference) * profile.contrast, values).astype(np.float32)
    texture = smooth_field(rng, grid.shape, (max(2, grid.shape[0] // 4), 24, 24))
    image = values[organs] + textures[organs] * texture + offsets * np.float32(profile.contrast)
    sigma_vox = [profile.blur_mm / s for s in grid.spacing]
    image = ndimage.gaussian_filter(image, sigma=sigma_vox, mode="nearest", truncate=3.0)
    noise = rng.standard_normal(grid.shape, dtype=np.float32)
    if modality == "CT":
        # Reconstructed CT noise is spatially correlated; blur then restore its variance.
        noise = ndimage.gaussian_filter(noise, sigma=(0.0, 0.7, 0.7), truncate=2.5)
        noise *= np.float32(1.0 / max(float(noise.std()), 1e-6))
        image = image + noise * np.float32(profile.noise)
        ct: npt.NDArray[np.float32] = np.clip(image, -1024.0, 3071.0)
        return ct
    bias = 1.0 + profile.bias * smooth_field(rng, grid.shape, (2, 3, 3))
    image = image * bias.astype(np.float32)
    sigma = np.float32(profile.mr_noise * 800.0)
    imag = rng.standard_normal(grid.shape, dtype=np.float32) * sigma
    image = np.sqrt((image + noise * sigma) ** 2 + imag**2)  # Rician magnitude noise
    mr: npt.NDArray[np.float32] = np.clip(image, 0.0, 4095.0)
    return mr


def generate_study(
    modality: str = "CT",
    seed: int = 0,
    index: int = 0,
    profile: str | ScannerProfile = "site-a",
    slices: int = 64,
    matrix: int = 256,
    max_lesions: int = 4,
    lesion_count: int | None = None,
    lesion_scale: float = 1.0,
    lesion_contrast: float = 1.0,
) -> SynthStudy:
    """Build one study in memory; nothing is written.

    ``lesion_count`` forces how many lesions are attempted (a lesion that finds no room in
    its host organ is dropped); by default about a quarter of studies are normal.
    ``lesion_scale`` multiplies the lesions' radii (1.0: 5-16 mm). ``lesion_contrast``
    multiplies every fragment's signal offset (CT 1.0: 18-60 HU from the host organ) after
    it is drawn, so a study at another contrast has the same lesions in the same places.
    """
    modality = modality.upper()
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}")
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, MODALITIES.index(modality)]))
    fov = prof.ct_fov_mm if modality == "CT" else prof.mr_fov_mm
    thickness = prof.slice_thickness_mm if modality == "CT" else max(prof.slice_thickness_mm, 3.0)
    grid = Grid((slices, matrix, matrix), (thickness, fov / matrix, fov / matrix))
    table = tissues(modality)
    organs = ct_abdomen(grid, rng) if modality == "CT" else mr_brain(grid, rng)
    drawn = draw_lesion_count(rng, max_lesions)
    count = drawn if lesion_count is None else lesion_count
    lesions, offsets, plans = place_lesions(grid, organs, table, modality, count, rng, lesion_scale, lesion_contrast)
    image = _form_image(organs, offsets, table, modality, prof, grid, rng)

    if modality == "CT":
        intercept = 0.0 if prof.signed_pixels else -1024.0
        stored_f = np.rint(image - intercept)
        stored: npt.NDArray[np.int16] | npt.NDArray[np.uint16] = (
            stored_f.astype(np.int16) if prof.signed_pixels else stored_f.astype(np.uint16)
        )
        window = (40.0, 400.0)
    else:
        intercept = 0.0
        stored = np.rint(image).astype(np.uint16)
        window = (600.0, 1200.0)
    # The image in output units is exactly what a reader gets back after rescale.
    values = (stored.astype(np.float32) + np.float32(intercept)).astype(np.float32)

    study_uid = derived_uid(seed, index, modality, "study")
    day = date(2026, 1, 1) + timedelta(days=(seed * 7919 + index) % 365)
    pid = f"SYN{seed % 10000:04d}{index:05d}{modality}"
    header = SeriesHeader(
        modality=modality,
        profile=prof,
        patient_name=f"SYNTHETIC^{_FIRST_NAMES[(seed + index) % len(_FIRST_NAMES)]}{index:03d}",
        patient_id=pid,
        birth_date=f"{1940 + (seed + index * 13) % 60}0{1 + index % 9}15",
        sex="MF"[(seed + index) % 2],
        study_uid=study_uid,
        series_uid=derived_uid(study_uid, "series", 1),
        frame_of_reference_uid=derived_uid(study_uid, "for"),
        study_date=day.strftime("%Y%m%d"),
        study_time=f"{8 + index % 10:02d}{(seed * 7) % 60:02d}00",
        accession=f"A{seed % 1000:03d}{index:06d}",
        pixel_spacing=(grid.spacing[1], grid.spacing[2]),
        slice_spacing=grid.spacing[0],
        rescale_intercept=intercept,
        signed=prof.signed_pixels if modality == "CT" else False,
        window=window,
    )
    truth = _truth(header, grid, organs, lesions, plans, table, seed, index)
    return SynthStudy(header, grid, values, stored, organs, lesions, truth)


def _truth(
    header: SeriesHeader,
    grid: Grid,
    organs: npt.NDArray[np.uint8],
    lesions: npt.NDArray[np.uint16],
    plans: list,  # type: ignore[type-arg]
    table: tuple[Tissue, ...],
    seed: int,
    index: int,
) -> StudyTruth:
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    origin = np.asarray(grid.origin)
    step = np.asarray([grid.spacing[2], grid.spacing[1], grid.spacing[0]])
    n = grid.shape[0]
    out: list[LesionTruth] = []
    for plan in plans:
        mask = lesions == plan.lesion_id
        idx = np.argwhere(mask)
        _, components = ndimage.label(mask)
        centroid = idx.mean(axis=0)
        lps = origin + centroid[::-1] * step
        ks = idx[:, 0]
        out.append(
            LesionTruth(
                lesion_id=plan.lesion_id,
                organ=plan.host,
                voxels=int(mask.sum()),
                volume_ml=round(int(mask.sum()) * voxel_ml, 4),
                components=int(components),
                centroid_lps_mm=(round(float(lps[0]), 2), round(float(lps[1]), 2), round(float(lps[2]), 2)),
                slice_range=(int(n - ks.max()), int(n - ks.min())),
                contrasts=plan.contrasts,
            )
        )
    return StudyTruth(
        study_instance_uid=str(header.study_uid),
        series_instance_uid=str(header.series_uid),
        modality=header.modality,
        profile=header.profile.name,
        seed=seed,
        index=index,
        shape=grid.shape,
        spacing_mm=grid.spacing,
        lesion_present=bool(out),
        lesion_count=len(out),
        lesions=tuple(out),
        organ_labels={t.label: t.name for t in table},
    )


def write_dataset(study: SynthStudy, out_dir: Path, transfer_syntax: str = "explicit") -> dict[str, object]:
    """Write ``dicom/``, ``labels/organs.nii.gz``, ``labels/lesions.nii.gz`` and ``study.json``."""
    files = write_series(study.header, study.stored, study.grid.origin, out_dir / "dicom", transfer_syntax)
    labels_dir = out_dir / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    ras = lps_to_ras(study.affine_lps)
    for name, array in (("organs", study.organs), ("lesions", study.lesions)):
        img = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), ras)
        img.set_qform(ras, code=1)
        img.set_sform(ras, code=1)
        nib.save(img, labels_dir / f"{name}.nii.gz")
    truth = asdict(study.truth)
    truth["transfer_syntax"] = transfer_syntax
    truth["files"] = len(files)
    truth["label_maps"] = {"organs": "labels/organs.nii.gz", "lesions": "labels/lesions.nii.gz"}
    (out_dir / "study.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return truth
