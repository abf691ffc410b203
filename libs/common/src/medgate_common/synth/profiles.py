"""Scanner/site profiles: what makes one hospital's images look unlike another's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScannerProfile:
    name: str
    institution: str
    manufacturer: str
    model: str
    station: str
    noise: float  # CT: HU standard deviation of the reconstructed image
    mr_noise: float  # MR: Rician sigma as a fraction of white-matter signal
    contrast: float  # scale of soft-tissue differences around a reference value
    blur_mm: float  # Gaussian point-spread sigma, in mm
    ct_fov_mm: float
    mr_fov_mm: float
    slice_thickness_mm: float
    kvp: float
    kernel: str
    signed_pixels: bool  # CT: signed storage with intercept 0, else unsigned with -1024
    field_strength_t: float
    bias: float  # MR: amplitude of the smooth multiplicative receive-coil field
    tr_ms: float
    te_ms: float


PROFILES: dict[str, ScannerProfile] = {
    p.name: p
    for p in (
        ScannerProfile(
            name="site-a",
            institution="Synthetic General Hospital",
            manufacturer="MedGate Synthetic",
            model="Phantom CT-64",
            station="SYNTH-A",
            noise=12.0,
            mr_noise=0.025,
            contrast=1.0,
            blur_mm=0.7,
            ct_fov_mm=380.0,
            mr_fov_mm=230.0,
            slice_thickness_mm=3.0,
            kvp=120.0,
            kernel="STANDARD",
            signed_pixels=False,
            field_strength_t=1.5,
            bias=0.10,
            tr_ms=500.0,
            te_ms=12.0,
        ),
        ScannerProfile(
            name="site-b",
            institution="Synthetic University Clinic",
            manufacturer="MedGate Synthetic",
            model="Phantom CT-128",
            station="SYNTH-B",
            noise=22.0,
            mr_noise=0.045,
            contrast=0.85,
            blur_mm=1.1,
            ct_fov_mm=420.0,
            mr_fov_mm=250.0,
            slice_thickness_mm=5.0,
            kvp=100.0,
            kernel="SOFT",
            signed_pixels=True,
            field_strength_t=3.0,
            bias=0.25,
            tr_ms=600.0,
            te_ms=10.0,
        ),
        ScannerProfile(
            name="site-c",
            institution="Synthetic Community Hospital",
            manufacturer="MedGate Synthetic",
            model="Phantom CT-16",
            station="SYNTH-C",
            noise=7.0,
            mr_noise=0.015,
            contrast=1.15,
            blur_mm=0.5,
            ct_fov_mm=350.0,
            mr_fov_mm=220.0,
            slice_thickness_mm=2.5,
            kvp=140.0,
            kernel="SHARP",
            signed_pixels=False,
            field_strength_t=1.0,
            bias=0.05,
            tr_ms=450.0,
            te_ms=15.0,
        ),
    )
}
