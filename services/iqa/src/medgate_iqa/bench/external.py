"""Real images against degradations written by code other than ours.

The quality gate must not only recognise its own simulators. Here real slices (clean, and
degraded by SimpleITK's noise and smoothing filters, a SciPy linear motion-blur kernel,
block downsampling, and for MR MONAI's k-space Gibbs, spike and Rician noise transforms —
none of which training ever used) go through the whole series path
(native resolution in, verdict out). Clean slices must pass (good or usable); severely
degraded ones must be rejected.

Each degradation is defined once, relative to the field of view or the signal, and is
not tuned per image; every one of them is expected to be rejected. How much it changed
each slice is also *measured* (1 - SSIM over the anatomy at the slice's own resolution,
read with the band of the attribute it imitates) and reported beside the verdict, for
information only: a 5-pixel smear on a 64 x 64 MR, for instance, measures 0.07 and is
barely visible, and it still counts as a miss when the gate lets it through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.schemas.quality import QualityAttribute, Severity, Verdict
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.sources import dicom_frames, volume
from medgate_iqa.core.views import to_grid
from medgate_iqa.degrade import attributes, band, degrade, impact

Slice = npt.NDArray[np.float32]
Degradation = Callable[[Slice, str], Slice]
Series = dict[str, tuple[str, list[Slice]]]  # name -> (modality, slices at native resolution)


def _ch2(zs: range) -> list[Slice]:
    head = volume("ch2.nii.gz")
    return [np.ascontiguousarray(np.rot90(head[:, :, z])) for z in zs]


def real_series() -> Series:
    """Real series at native resolution. 693_J2KR (a head CT, lossless), explicit_VR-UN (an abdominal
    CT), emri frames 7-9 and Colin27 axial 112-148 are held out from training; CT_small and
    MR_small were training images."""
    return {
        "CT_small (train)": ("CT", dicom_frames("CT_small.dcm")),
        "693_J2KR (held out)": ("CT", dicom_frames("693_J2KR.dcm")),
        "explicit_VR-UN abdomen (held out)": ("CT", dicom_frames("explicit_VR-UN.dcm")),
        "MR_small (train)": ("MR", dicom_frames("MR_small.dcm")),
        "emri_small 7-9 (held out)": ("MR", dicom_frames("emri_small.dcm")[7:10]),
        "Colin27 axial (held out)": ("MR", _ch2(range(112, 150, 12))),
    }


def _sitk(image: Slice, make: Callable[[Any], Any]) -> Slice:
    import SimpleITK as sitk  # noqa: N813 - installed with torchio (the training extra)

    out = sitk.GetArrayFromImage(make(sitk.GetImageFromArray(image.astype(np.float32))))
    return np.asarray(out, dtype=np.float32)


def sitk_noise(image: Slice, modality: str) -> Slice:
    import SimpleITK as sitk  # noqa: N813

    sigma = 150.0 if modality == "CT" else 0.25 * float(np.percentile(image, 99.5))

    def add(im: Any) -> Any:
        return sitk.AdditiveGaussianNoise(im, standardDeviation=sigma, mean=0.0, seed=42)  # type: ignore[no-untyped-call]

    out = _sitk(image, add)
    return out if modality == "CT" else np.abs(out)


def sitk_smoothing(image: Slice, modality: str) -> Slice:
    import SimpleITK as sitk  # noqa: N813

    sigma = 0.035 * max(image.shape)  # a PSF 3.5 % of the field of view wide
    return _sitk(image, lambda im: sitk.DiscreteGaussian(im, variance=sigma**2, maximumKernelWidth=128))


def scipy_motion_blur(image: Slice, modality: str) -> Slice:
    length = max(5, int(0.09 * max(image.shape)))
    kernel = np.zeros((length, length), dtype=np.float32)
    kernel[length // 2, :] = 1.0 / length
    kernel = ndimage.rotate(kernel, 30, reshape=False, order=1)
    return np.asarray(ndimage.convolve(image, kernel / kernel.sum(), mode="nearest"), dtype=np.float32)


def block_downsample(image: Slice, modality: str) -> Slice:
    f = max(4, max(image.shape) // 16)
    h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
    small = image[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    blocks = np.kron(small, np.ones((f, f), dtype=np.float32))
    # a last, partial row or column of blocks repeats its neighbour: the shape is kept
    return np.pad(blocks, ((0, image.shape[0] - h), (0, image.shape[1] - w)), mode="edge").astype(np.float32)


def _monai(image: Slice, transform: Any) -> Slice:
    out: Slice = np.asarray(transform(image[None].astype(np.float32)), dtype=np.float32)[0]
    return out


def monai_gibbs(image: Slice, modality: str) -> Slice:
    """MONAI's GibbsNoise: k-space truncated to a low-pass disc (alpha 0.85 of it removed)."""
    from monai.transforms.intensity.array import GibbsNoise

    return np.abs(_monai(image, GibbsNoise(alpha=0.85)))  # MR is a magnitude image


def monai_spike(image: Slice, modality: str) -> Slice:
    """MONAI's KSpaceSpikeNoise: one spike off the k-space centre, at MONAI's default
    intensity (2.5 x the mean log magnitude): herringbone stripes over the whole image."""
    from monai.transforms.intensity.array import KSpaceSpikeNoise

    h, w = image.shape
    return np.abs(_monai(image, KSpaceSpikeNoise(loc=(0, h // 2 + h // 10, w // 2 + w // 7))))


def monai_rician(image: Slice, modality: str) -> Slice:
    """MONAI's RandRicianNoise: magnitude of signal plus complex Gaussian noise, σ 20 % of
    the 99.5th-percentile signal."""
    from monai.transforms.intensity.array import RandRicianNoise

    sigma = 0.2 * float(np.percentile(image, 99.5))
    transform = RandRicianNoise(prob=1.0, std=sigma, sample_std=False)
    transform.set_random_state(seed=42)
    return _monai(image, transform)


@dataclass(frozen=True)
class External:
    make: Degradation
    imitates: QualityAttribute  # whose severity band the measured impact is read with
    modalities: tuple[str, ...] = ("CT", "MR")


EXTERNAL: dict[str, External] = {
    "SimpleITK AdditiveGaussianNoise": External(sitk_noise, QualityAttribute.noise),
    "SimpleITK DiscreteGaussian": External(sitk_smoothing, QualityAttribute.blur),
    "SciPy linear motion-blur kernel": External(scipy_motion_blur, QualityAttribute.blur),
    "block downsampling (pixelation)": External(block_downsample, QualityAttribute.blur),
    "MONAI GibbsNoise": External(monai_gibbs, QualityAttribute.gibbs, ("MR",)),
    "MONAI KSpaceSpikeNoise": External(monai_spike, QualityAttribute.spike, ("MR",)),
    "MONAI RandRicianNoise": External(monai_rician, QualityAttribute.noise, ("MR",)),
}


def measured_level(measured: float, attribute: QualityAttribute) -> str:
    """The band a measured impact falls in ("gap": between mild and severe, never labelled)."""
    level = band(attribute).level(measured)
    return "gap" if level is None else level.value


def run_external(gate: QualityAssessor, series: Series | None = None) -> list[dict[str, object]]:
    """One row per real series (default: :func:`real_series`) and condition (clean or an
    external degradation)."""
    rows: list[dict[str, object]] = []
    for name, (modality, slices) in (series or real_series()).items():
        conditions: dict[str, External | None] = {
            "clean": None,
            **{k: v for k, v in EXTERNAL.items() if modality in v.modalities},
        }
        for condition, external in conditions.items():
            shown = slices if external is None else [external.make(s, modality) for s in slices]
            measured = float(np.mean([impact(a, b, modality) for a, b in zip(slices, shown, strict=True)]))
            report = gate.assess_slices(shown, modality, "1.2.3").report
            ok = report.verdict is not Verdict.reject if external is None else report.verdict is Verdict.reject
            rows.append(
                {
                    "series": name,
                    "modality": modality,
                    "condition": condition,
                    "impact": round(measured, 3),
                    "measured_level": "none" if external is None else measured_level(measured, external.imitates),
                    "expected": "pass" if external is None else "reject",
                    "verdict": report.verdict.value,
                    "findings": [f"{f.severity.value} {f.attribute.value}" for f in report.findings],
                    "ok": ok,
                }
            )
    return rows


def run_ours(gate: QualityAssessor, seed: int = 5, series: Series | None = None) -> list[dict[str, object]]:
    """Our own simulators at a measured severe level on one slice of each held-out real
    series, every attribute of the modality: each must be rejected. An attribute whose
    severe band no knob reaches on that slice gets a row with ``reached`` false (and no
    verdict), so that it is reported rather than silently left out."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for name, (modality, slices) in (series or real_series()).items():
        if "held out" not in name:
            continue
        for attribute in attributes(modality):
            result = degrade(to_grid(slices[0]), modality, attribute, Severity.severe, rng)
            if result is None:
                rows.append({"series": name, "attribute": attribute.value, "reached": False, "ok": False})
                continue
            report = gate.assess_slices([result[0]], modality, "1.2.3").report
            rows.append(
                {
                    "series": name,
                    "attribute": attribute.value,
                    "reached": True,
                    "impact": result[1].impact,
                    "verdict": report.verdict.value,
                    "findings": [f"{f.severity.value} {f.attribute.value}" for f in report.findings],
                    "ok": report.verdict is Verdict.reject,
                }
            )
    return rows
