"""Real images against degradations written by code other than ours.

The quality gate must not only recognise its own simulators. Here real slices (clean, and
degraded by SimpleITK's noise and smoothing filters, a SciPy linear motion-blur kernel and
block downsampling — none of which training ever used) go through the whole series path
(native resolution in, verdict out). Clean slices must pass (good or usable); severely
degraded ones must be rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.schemas.quality import Verdict
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.sources import dicom_frames, volume

Slice = npt.NDArray[np.float32]
Degradation = Callable[[Slice, str], Slice]


def _ch2(zs: range) -> list[Slice]:
    head = volume("ch2.nii.gz")
    return [np.ascontiguousarray(np.rot90(head[:, :, z])) for z in zs]


def real_series() -> dict[str, tuple[str, list[Slice]]]:
    """Real series at native resolution. 693_J2KI, emri frames 7-9 and Colin27 axial
    112-148 are held out from training; CT_small and MR_small were training images."""
    return {
        "CT_small (train)": ("CT", dicom_frames("CT_small.dcm")),
        "693_J2KI (held out)": ("CT", dicom_frames("693_J2KI.dcm")),
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
    return np.kron(small, np.ones((f, f), dtype=np.float32)).astype(np.float32)


EXTERNAL: dict[str, Degradation] = {
    "SimpleITK AdditiveGaussianNoise": sitk_noise,
    "SimpleITK DiscreteGaussian": sitk_smoothing,
    "SciPy linear motion-blur kernel": scipy_motion_blur,
    "block downsampling (pixelation)": block_downsample,
}


def run_external(gate: QualityAssessor) -> list[dict[str, object]]:
    """One row per real series and condition (clean or an external degradation)."""
    rows: list[dict[str, object]] = []
    for name, (modality, slices) in real_series().items():
        conditions: dict[str, Degradation | None] = {"clean": None, **EXTERNAL}
        for condition, make in conditions.items():
            shown = slices if make is None else [make(s, modality) for s in slices]
            report = gate.assess_slices(shown, modality, "1.2.3").report
            expected = "pass" if make is None else "reject"
            ok = report.verdict is Verdict.reject if make is not None else report.verdict is not Verdict.reject
            rows.append(
                {
                    "series": name,
                    "modality": modality,
                    "condition": condition,
                    "expected": expected,
                    "verdict": report.verdict.value,
                    "findings": [f"{f.severity.value} {f.attribute.value}" for f in report.findings],
                    "ok": ok,
                }
            )
    return rows
