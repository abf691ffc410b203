"""``POST /v1/segment``: lesions of an uploaded series; ``GET /v1/segmentations/{id}/…``: the
SEG, the overlays and the result it wrote.

Results are files in the service's store (``segmentations/<id>/``), not rows: the service
stays stateless, and any replica that shares the store can answer the GETs.
"""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from medgate_common.api.compute import SlotsDep
from medgate_common.api.results import ResultId, StorageDep, stored, stored_file
from medgate_common.api.uploads import expand_zips, file_parts, group_series, one_series, read_form
from medgate_common.errors import InputError
from medgate_common.schemas.segmentation import SegmentationResult
from medgate_seg import metrics
from medgate_seg.api.deps import SegmenterDep, SettingsDep
from medgate_seg.api.schemas import PROBLEMS, SEGMENT_BODY
from medgate_seg.core.dicom_seg import SegIdentity
from medgate_seg.outputs import DICOM, PNG, SEG_NAME, write_outputs

router = APIRouter(prefix="/v1", tags=["segmentation"])
RESULT = "lesions.json"
FileName = Annotated[str, Path(pattern=r"^(seg\.dcm|overlay-[0-9]{4,}\.png)$")]


@router.post(
    "/segment",
    summary="Segment the lesions of one series",
    description="Upload the DICOM files of one series (or a zip of them). The answer lists the lesions (volume, "
    "centroid in patient LPS mm, instance-number range, mean intensity, fragments) and, when there is at least "
    "one, a DICOM SEG with one segment per lesion; `Location` names the folder to fetch it from "
    "(`/seg.dcm`, the overlays). No lesion: no SEG (`seg_uri` is null).",
    openapi_extra=SEGMENT_BODY,
    responses={**PROBLEMS, 200: {"headers": {"Location": {"description": "/v1/segmentations/{id}"}}}},
)
async def segment(
    request: Request,
    response: Response,
    settings: SettingsDep,
    segmenter: SegmenterDep,
    storage: StorageDep,
    slots: SlotsDep,
) -> SegmentationResult:
    async with read_form(request, settings) as form:
        parts = await file_parts(form)
    parts = await slots.run(partial(expand_zips, parts, settings))
    series = one_series(await slots.run(partial(group_series, parts)), "/v1/segment")
    del parts  # the parsed datasets hold the pixels now; let the raw upload go
    result_id = uuid.uuid4().hex
    folder = f"segmentations/{result_id}"

    def run() -> SegmentationResult:
        started = time.perf_counter()
        try:
            segmentation = segmenter.segment(series.datasets)
        except InputError as exc:
            metrics.SERIES.labels(str(exc.details.get("reason", exc.code))).inc()
            raise
        written = write_outputs(storage, folder, segmentation, segmenter, SegIdentity.fresh())
        storage.put_bytes(f"{folder}/{RESULT}", written.result.model_dump_json(indent=2).encode())
        metrics.SERIES.labels("lesions" if segmentation.lesions else "no_lesion").inc()
        metrics.LESIONS.inc(len(segmentation.lesions))
        metrics.SEGMENT_SECONDS.observe(time.perf_counter() - started)
        return written.result

    result = await slots.run(run)
    response.headers["Location"] = f"/v1/segmentations/{result_id}"
    return result


@router.get("/segmentations/{result_id}", summary="The result of an earlier /v1/segment")
async def get_result(result_id: ResultId, storage: StorageDep) -> SegmentationResult:
    found = stored(storage, f"segmentations/{result_id}/{RESULT}", "no segmentation with this id")
    return SegmentationResult.model_validate_json(found)


@router.get(
    "/segmentations/{result_id}/{name}",
    summary="The DICOM SEG (seg.dcm) or an overlay PNG of an earlier /v1/segment",
    response_class=Response,
    responses={200: {"content": {DICOM: {}, PNG: {}}}, 404: {"description": "No such result or file (not_found)"}},
)
async def get_file(result_id: ResultId, name: FileName, storage: StorageDep) -> Response:
    found = stored_file(
        storage,
        f"segmentations/{result_id}",
        RESULT,
        name,
        no_result="no segmentation with this id",
        no_file="no SEG: no lesion was found in this series" if name == SEG_NAME else "no such overlay",
    )
    media = DICOM if name == SEG_NAME else PNG
    return Response(found, media_type=media)
