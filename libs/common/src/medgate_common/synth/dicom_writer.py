"""Writes a synthetic series as a complete CT or MR Image IOD, one file per slice.

Modules written: Patient, General Study, Patient Study, General Series, Frame of Reference,
General Equipment, General Acquisition, General Image, Image Plane, Image Pixel, CT Image or
MR Image, VOI LUT and SOP Common. UIDs are derived from the seed (``2.25`` + hash), so they
are unique per study and series yet identical when the same seed runs again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
)

from medgate_common import __version__
from medgate_common.synth.profiles import ScannerProfile

IMPLEMENTATION_CLASS_UID = UID("2.25.305828888150331271148262470311652713961")
IMPLEMENTATION_VERSION = f"MEDGATE_{__version__}"[:16]

TRANSFER_SYNTAXES: dict[str, UID] = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "j2k": JPEG2000Lossless,
}


_UID_NAMESPACE = uuid.UUID("9b1f7c1e-3c51-4d8e-9a0e-6d2f1f0c5a11")


def derived_uid(*parts: object) -> UID:
    """A ``2.25`` UID from a name-based (SHA-1, version 5) UUID: same parts, same UID."""
    name = "/".join(map(str, parts))
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")


@dataclass(frozen=True)
class SeriesHeader:
    """Everything shared by the slices of one synthetic series."""

    modality: str
    profile: ScannerProfile
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    study_uid: UID
    series_uid: UID
    frame_of_reference_uid: UID
    study_date: str
    study_time: str
    accession: str
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing)
    slice_spacing: float
    rescale_intercept: float
    signed: bool
    window: tuple[float, float]


def _dataset_for_slice(
    h: SeriesHeader, index: int, position: tuple[float, float, float], pixels: npt.NDArray[np.generic], sop_uid: UID
) -> Dataset:
    is_ct = h.modality == "CT"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if is_ct else "OTHER"]
    ds.InstanceCreationDate = h.study_date
    ds.InstanceCreationTime = h.study_time
    ds.SOPClassUID = CTImageStorage if is_ct else MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = h.study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = h.study_time
    ds.AccessionNumber = h.accession
    ds.Modality = h.modality
    ds.Manufacturer = h.profile.manufacturer
    ds.InstitutionName = h.profile.institution
    ds.ReferringPhysicianName = ""
    ds.StationName = h.profile.station
    ds.StudyDescription = "CT ABDOMEN WITHOUT CONTRAST" if is_ct else "MR BRAIN T1"
    ds.SeriesDescription = "Axial 3mm" if is_ct else "Ax T1 SE"
    ds.ManufacturerModelName = h.profile.model
    ds.PatientName = h.patient_name
    ds.PatientID = h.patient_id
    ds.PatientBirthDate = h.birth_date
    ds.PatientSex = h.sex
    ds.BodyPartExamined = "ABDOMEN" if is_ct else "HEAD"
    ds.SliceThickness = f"{h.slice_spacing:.6g}"
    ds.DeviceSerialNumber = f"{h.profile.station}-0001"
    ds.SoftwareVersions = f"medgate-synth {__version__}"
    ds.PatientPosition = "HFS"
    if is_ct:
        ds.KVP = f"{h.profile.kvp:.6g}"
        ds.DataCollectionDiameter = f"{h.profile.ct_fov_mm:.6g}"
        ds.ReconstructionDiameter = f"{h.profile.ct_fov_mm:.6g}"
        ds.ConvolutionKernel = h.profile.kernel
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = f"{h.profile.tr_ms:.6g}"
        ds.EchoTime = f"{h.profile.te_ms:.6g}"
        ds.EchoTrainLength = 1
        ds.ImagingFrequency = f"{42.577 * h.profile.field_strength_t:.6g}"
        ds.ImagedNucleus = "1H"
        ds.MagneticFieldStrength = f"{h.profile.field_strength_t:.6g}"
        ds.SpacingBetweenSlices = f"{h.slice_spacing:.6g}"
    ds.StudyInstanceUID = h.study_uid
    ds.SeriesInstanceUID = h.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = h.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{position[2]:.6f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.PixelSpacing = [f"{h.pixel_spacing[0]:.6g}", f"{h.pixel_spacing[1]:.6g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if (h.signed or not is_ct) else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if h.signed else 0
    ds.WindowCenter = f"{h.window[0]:.6g}"
    ds.WindowWidth = f"{h.window[1]:.6g}"
    if is_ct:
        ds.RescaleIntercept = f"{h.rescale_intercept:.6g}"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def write_series(
    header: SeriesHeader,
    stored: npt.NDArray[np.generic],
    origin: tuple[float, float, float],
    out_dir: Path,
    transfer_syntax: str = "explicit",
) -> list[Path]:
    """Write ``stored`` ([slice, row, col] stored values, slice 0 inferior) as one file per slice.

    Files are numbered from the head down, as a scanner would send an axial series.
    """
    try:
        ts = TRANSFER_SYNTAXES[transfer_syntax]
    except KeyError:
        raise ValueError(
            f"unknown transfer syntax {transfer_syntax!r}; choose from {sorted(TRANSFER_SYNTAXES)}"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    n = stored.shape[0]
    paths: list[Path] = []
    for number, k in enumerate(range(n - 1, -1, -1)):
        position = (origin[0], origin[1], origin[2] + k * header.slice_spacing)
        sop_uid = derived_uid(header.series_uid, k)
        ds = _dataset_for_slice(header, number, position, stored[k], sop_uid)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        if ts.is_compressed:
            ds.compress(ts)
        else:
            meta.TransferSyntaxUID = ts
        path = out_dir / f"IM{number + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
