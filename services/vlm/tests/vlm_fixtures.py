"""Helpers of the reasoning service's DICOM tests (its conftest puts this folder on sys.path).

The study is the root conftest's synthetic CT (real files, read back as the seg service
reads them); its lesions are found by the seg service's own core on the generator's exact
label map, and the SEG is the one that service writes for them. The reasoning service meets
the seg service only through these DICOM objects and the lesion list
(``medgate_common.schemas``), as it will in the workflow: medgate-seg is a test dependency
here, never a runtime one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.segmentation import Lesion
from medgate_common.synth import SynthStudy
from medgate_seg.core.dicom_seg import SegIdentity, build_seg, seg_bytes
from medgate_seg.core.lesions import find_lesions
from medgate_seg.core.series import SourceSeries, read_series

SEG_MODEL = ModelInfo(name="lesion-seg", version="1.0.0", sha256="ab" * 32, backend="onnxruntime")
VLM_MODEL = ModelInfo(name="medgate-vqa", version="0.3.0", sha256="cd" * 32, backend="onnxruntime")


@dataclass(frozen=True)
class SegmentedStudy:
    source: SourceSeries
    labels: npt.NDArray[np.uint16]  # volume order, labels == k is lesion k
    lesions: tuple[Lesion, ...]
    seg: Dataset  # as read back from its bytes, the way the reasoning step receives it


def _host_organs(study: SynthStudy, labels: npt.NDArray[np.uint16], lesions: tuple[Lesion, ...]) -> tuple[Lesion, ...]:
    """Each lesion with the organ most of its voxels lie in (the generator's organ map)."""
    names = study.truth.organ_labels
    out = []
    for lesion in lesions:
        host = np.bincount(study.organs[labels == lesion.lesion_id]).argmax()
        out.append(lesion.model_copy(update={"organ": names[int(host)]}))
    return tuple(out)


def segment(study: SynthStudy, folder: Path) -> SegmentedStudy:
    """The study's lesions found by the seg service's core on its exact label map, and their SEG."""
    source = read_series([pydicom.dcmread(p) for p in sorted((folder / "dicom").glob("*.dcm"))], ("CT",))
    found = find_lesions(study.lesions > 0, source.volume, source.slice_numbers, min_lesion_ml=0.0, group_mm=0.0)
    lesions = _host_organs(study, found.labels, found.lesions)
    seg = build_seg(
        source.datasets,
        source.volume.frame_numbers,
        found.labels,
        lesions,
        SEG_MODEL,
        0.5,
        SegIdentity.derived("vlm-tests", study.truth.series_instance_uid),
        "0.1.0",
    )
    return SegmentedStudy(source, found.labels, lesions, pydicom.dcmread(io.BytesIO(seg_bytes(seg))))
