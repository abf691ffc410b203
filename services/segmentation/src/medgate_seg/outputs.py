"""Writing one series' segmentation to storage: the DICOM SEG and the review PNGs, under one
folder, and the :class:`SegmentationResult` that names them. The API and the workflow step
write the same files; only the folder and the SEG's UIDs differ (the step derives them from
its request, so a redelivered task rewrites the same object)."""

from __future__ import annotations

from dataclasses import dataclass

from medgate_common.schemas.segmentation import SegmentationResult
from medgate_common.schemas.workflow import Artifact
from medgate_common.storage import LocalStorage
from medgate_seg import __version__
from medgate_seg.core.dicom_seg import SegIdentity, seg_bytes
from medgate_seg.core.pipeline import Segmentation, Segmenter

SEG_NAME = "seg.dcm"
DICOM = "application/dicom"
PNG = "image/png"


@dataclass(frozen=True)
class Written:
    result: SegmentationResult
    artifacts: tuple[Artifact, ...]


def write_outputs(
    storage: LocalStorage, folder: str, segmentation: Segmentation, segmenter: Segmenter, identity: SegIdentity
) -> Written:
    """Store ``seg.dcm`` (only when a lesion was found) and the overlays under ``folder``."""
    artifacts: list[Artifact] = []
    seg_uri: str | None = None
    seg = segmentation.seg(identity, __version__)
    if seg is not None:
        seg_uri = storage.put_bytes(f"{folder}/{SEG_NAME}", seg_bytes(seg))
        count = len(segmentation.lesions)
        artifacts.append(Artifact(uri=seg_uri, media_type=DICOM, description=f"DICOM SEG, {count} lesion(s), AI"))
    overlay_uris: list[str] = []
    for overlay in segmentation.overlays(segmenter.options.overlays, segmenter.window_centre_width):
        uri = storage.put_bytes(f"{folder}/{overlay.name}", overlay.png)
        overlay_uris.append(uri)
        artifacts.append(
            Artifact(uri=uri, media_type=PNG, description=f"lesion outlines on image {overlay.slice_number}")
        )
    result = SegmentationResult(
        series_instance_uid=segmentation.series_instance_uid,
        lesions=segmentation.lesions,
        seg_uri=seg_uri,
        overlay_uris=tuple(overlay_uris),
        model=segmentation.model,
    )
    return Written(result, tuple(artifacts))
