"""The lesion map as a DICOM Segmentation (BINARY), written with highdicom.

Layout: one segment per lesion ("Lesion 1", "Lesion 2", … numbered as in the lesion list,
largest first), so that a reviewer can accept or reject each finding on its own and the
SEG's segment ``k`` is the result's ``lesion_id`` ``k`` (also its Tracking ID). Each segment
is coded as SNOMED CT *Morphologically abnormal structure* (49755003) / *Lesion*
(52988006), algorithm type AUTOMATIC, with the model's name and version under the DICOM
family *Artificial Intelligence* (DCM 123110) and the card's threshold and the weights'
sha256 as algorithm parameters. Frames are the source's own planes: highdicom takes each
frame's position and orientation from the source image it refers to, the SEG shares the
source's Frame of Reference, and frames without any lesion are left out.

No lesion, no SEG: DICOM does not allow a segment without pixels, and an empty SEG would
say nothing a reader can see; the result then has no ``seg_uri``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from medgate_common.errors import InputError
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.segmentation import Lesion

MANUFACTURER = "MedGate"
MODEL_NAME = "medgate-seg"
SERIES_NUMBER = 9101
SERIES_DESCRIPTION = "AI lesion segmentation (MedGate, not reviewed)"


@dataclass(frozen=True)
class SegIdentity:
    """UIDs of the SEG; derived from what it answers when the same request may come twice."""

    series_instance_uid: str
    sop_instance_uid: str

    @classmethod
    def fresh(cls) -> SegIdentity:
        return cls(str(generate_uid()), str(generate_uid()))

    @classmethod
    def derived(cls, *parts: str) -> SegIdentity:
        return cls(
            str(generate_uid(entropy_srcs=[*parts, "series"])), str(generate_uid(entropy_srcs=[*parts, "instance"]))
        )


def _algorithm(model: ModelInfo, threshold: float) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=model.name,
        family=codes.DCM.ArtificialIntelligence,
        version=model.version,
        source=MANUFACTURER,
        parameters={"threshold": f"{threshold:g}", "weights_sha256": model.sha256},
    )


def segment_descriptions(
    lesions: Sequence[Lesion], model: ModelInfo, threshold: float, identity: SegIdentity
) -> list[hd.seg.SegmentDescription]:
    algorithm = _algorithm(model, threshold)
    return [
        hd.seg.SegmentDescription(
            segment_number=lesion.lesion_id,
            segment_label=f"Lesion {lesion.lesion_id}",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=f"lesion {lesion.lesion_id}",
            tracking_uid=str(generate_uid(entropy_srcs=[identity.sop_instance_uid, str(lesion.lesion_id)])),
        )
        for lesion in lesions
    ]


def source_frames(
    labels: npt.NDArray[np.uint16], datasets: Sequence[Dataset], frame_numbers: Sequence[int]
) -> npt.NDArray[np.uint16]:
    """``labels`` in volume order → in the order highdicom pairs frames with the source:
    one frame per source instance, or per frame of a single multi-frame source."""
    if len(datasets) == 1 and len(frame_numbers) > 1:
        ordered = np.zeros_like(labels)
        ordered[np.asarray(frame_numbers) - 1] = labels
        return ordered
    return labels


def build_seg(
    datasets: Sequence[Dataset],
    frame_numbers: Sequence[int],
    labels: npt.NDArray[np.uint16],
    lesions: Sequence[Lesion],
    model: ModelInfo,
    threshold: float,
    identity: SegIdentity,
    software_version: str,
) -> hd.seg.Segmentation:
    """The SEG of ``labels`` (volume order, ``labels == k`` is lesion ``k``) on its source."""
    if not lesions:
        raise InputError("no lesion to write: a SEG needs at least one non-empty segment")
    stack = source_frames(labels, datasets, frame_numbers)
    ids = np.arange(1, len(lesions) + 1, dtype=np.uint16)
    pixels = (stack[..., np.newaxis] == ids).astype(np.uint8)  # [frames, rows, cols, segments]
    return hd.seg.Segmentation(
        source_images=list(datasets),
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(lesions, model, threshold, identity),
        series_instance_uid=identity.series_instance_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=identity.sop_instance_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME,
        software_versions=software_version,
        device_serial_number=model.sha256[:16],
        content_label="LESIONS",
        content_description="AI lesion segmentation, not reviewed",
        content_creator_name="MedGate^AI",
        series_description=SERIES_DESCRIPTION,
        # trained on synthetic studies only: not a cleared product
        content_qualification=hd.ContentQualificationValues.RESEARCH,
    )


def seg_bytes(seg: hd.seg.Segmentation) -> bytes:
    buffer = io.BytesIO()
    seg.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
