"""``POST /v1/assess``: the gate's verdict on an uploaded study."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request

from medgate_common.api.compute import SlotsDep
from medgate_common.api.uploads import file_parts, group_series, read_form
from medgate_common.schemas.quality import StudyQualityReport
from medgate_iqa.api.assessing import assess_study
from medgate_iqa.api.deps import AssessorDep, SettingsDep
from medgate_iqa.api.errors import MixedStudiesError
from medgate_iqa.api.schemas import ASSESS_BODY, PROBLEMS

router = APIRouter(prefix="/v1", tags=["quality"])


@router.post(
    "/assess",
    summary="Assess the image quality of one study",
    description="Upload the DICOM files of one study (any number of series). Each series is judged on its "
    "own; the study verdict follows the gate policy's study rule. Series that cannot be judged are listed "
    "in `not_assessable`; if none can be judged the answer is 422 `not_assessable`.",
    openapi_extra=ASSESS_BODY,
    responses=PROBLEMS,
)
async def assess(request: Request, settings: SettingsDep, assessor: AssessorDep, slots: SlotsDep) -> StudyQualityReport:
    async with read_form(request, settings) as form:
        parts = await file_parts(form)
    series = await slots.run(partial(group_series, parts))
    del parts  # the parsed datasets hold the pixels now; let the raw upload go
    studies = {s.study_instance_uid for s in series}
    if len(studies) > 1:
        raise MixedStudiesError(
            f"the upload holds {len(studies)} studies; send one study per request", studies=len(studies)
        )
    return await slots.run(lambda: assess_study(assessor, series))
