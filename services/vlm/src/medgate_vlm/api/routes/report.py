"""``POST /v1/report``: the draft report of one series (findings and impression, every sentence
with its evidence) with its DICOM SR and key images; ``GET /v1/reports/{id}/…``: the files.

Results are files in the service's store (``reports/<id>/``), not rows: the service stays
stateless, and any replica sharing the store answers the GETs.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from medgate_common.api.compute import SlotsDep
from medgate_common.api.results import ResultId, StorageDep, stored, stored_file
from medgate_common.errors import InputError
from medgate_common.schemas.quality import QualityReport
from medgate_common.schemas.reasoning import ReasoningResult
from medgate_vlm import metrics
from medgate_vlm.api.deps import ModelsDep, SettingsDep
from medgate_vlm.api.inputs import read_input
from medgate_vlm.api.schemas import PROBLEMS, REPORT_BODY
from medgate_vlm.core.report import DICOM, Uids
from medgate_vlm.core.study import read_series
from medgate_vlm.outputs import RESULT_NAME, write_report

router = APIRouter(prefix="/v1", tags=["report"])
FileName = Annotated[str, Path(pattern=r"^(report|key-lesion-[0-9]+|heatmap-answer-[0-9]+)\.dcm$")]


@router.post(
    "/report",
    summary="Draft report of one series, with its DICOM SR and key images",
    description="Send the series (files, or `study`), its SEG among the files (when a lesion was found), the seg "
    "service's `segmentation` result and, if the gate judged it, the `quality` report. The answer is the draft "
    "report: statements with the evidence each cites, the standard questions' grounded answers, the triage score "
    "(or why there is none), and `Location` names the folder of `report.dcm` (TID 1500 SR) and the key images.",
    openapi_extra=REPORT_BODY,
    responses={**PROBLEMS, 200: {"headers": {"Location": {"description": "/v1/reports/{id}"}}}},
)
async def report(
    request: Request,
    response: Response,
    settings: SettingsDep,
    models: ModelsDep,
    storage: StorageDep,
    slots: SlotsDep,
) -> ReasoningResult:
    reasoner = models.require_reasoner()
    given = await read_input(request, settings, slots, storage)
    result_id = uuid.uuid4().hex
    folder = f"reports/{result_id}"

    def run() -> ReasoningResult:
        started = time.perf_counter()
        try:
            quality = given.model("quality", QualityReport)
            segmentation, seg = given.segmentation(storage)
            series = read_series(given.images)
            drafted = reasoner.report(
                series, seg, segmentation.lesions, quality, Uids.fresh(), segmentation_model=segmentation.model
            )
        except InputError as exc:
            metrics.REPORTS.labels(exc.code).inc()
            raise
        for asked in drafted.asked:
            metrics.ANSWERS.labels(asked.result.intent, str(asked.result.answerable).lower()).inc()
        written = write_report(storage, folder, given.study_uid, given.series_uid, drafted, reasoner)
        metrics.REPORTS.labels("drafted").inc()
        metrics.REASON_SECONDS.observe(time.perf_counter() - started)
        return written.result

    result = await slots.run(run)
    response.headers["Location"] = f"/v1/reports/{result_id}"
    return result


@router.get("/reports/{result_id}", summary="The result of an earlier /v1/report")
async def get_report(result_id: ResultId, storage: StorageDep) -> ReasoningResult:
    found = stored(storage, f"reports/{result_id}/{RESULT_NAME}", "no report with this id")
    return ReasoningResult.model_validate_json(found)


@router.get(
    "/reports/{result_id}/{name}",
    summary="The SR (report.dcm) or a key image (key-lesion-N.dcm, heatmap-answer-N.dcm) of an earlier /v1/report",
    response_class=Response,
    responses={200: {"content": {DICOM: {}}}, 404: {"description": "No such report or file (not_found)"}},
)
async def get_file(result_id: ResultId, name: FileName, storage: StorageDep) -> Response:
    found = stored_file(
        storage,
        f"reports/{result_id}",
        RESULT_NAME,
        name,
        no_result="no report with this id",
        no_file="no such file in this report",
    )
    return Response(found, media_type=DICOM)
