"""``POST /v1/perception`` and ``POST /v1/compare``: the gate's answers in MedQ's formats
(multiple-choice perception questions, and which of two images is better and why)."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial

from fastapi import APIRouter, Request

from medgate_common.api.compute import SlotsDep
from medgate_common.api.uploads import file_parts, group_series, list_field, one_series, read_form, text_field
from medgate_common.errors import InputError
from medgate_iqa.api.assessing import assess_series
from medgate_iqa.api.deps import AssessorDep, SettingsDep
from medgate_iqa.api.schemas import COMPARE_BODY, PERCEPTION_BODY, PROBLEMS, ComparisonResult, PerceptionAnswer
from medgate_iqa.core.language import answer, compare

router = APIRouter(prefix="/v1", tags=["quality"])
SIDES = ("a", "b")


@router.post(
    "/perception",
    summary="Answer a multiple-choice question about one series' image quality",
    openapi_extra=PERCEPTION_BODY,
    responses=PROBLEMS,
)
async def perception(
    request: Request, settings: SettingsDep, assessor: AssessorDep, slots: SlotsDep
) -> PerceptionAnswer:
    async with read_form(request, settings) as form:
        question = text_field(form, "question")
        options = list_field(form, "options")
        parts = await file_parts(form)
    series = one_series(await slots.run(partial(group_series, parts)), "a perception question")
    del parts  # the parsed datasets hold the pixels now; let the raw upload go
    assessment = await slots.run(lambda: assess_series(assessor, series))
    chosen = answer(question, options, assessment)
    # validated, not constructed: core's Answer keeps kind as a plain str
    return PerceptionAnswer.model_validate({**asdict(chosen), "model": assessor.model.info})


@router.post(
    "/compare",
    summary="Say which of two series has the higher image quality, and why",
    openapi_extra=COMPARE_BODY,
    responses=PROBLEMS,
)
async def compare_series(
    request: Request, settings: SettingsDep, assessor: AssessorDep, slots: SlotsDep
) -> ComparisonResult:
    async with read_form(request, settings) as form:
        parts = await file_parts(form)
    stray = sorted({p.field for p in parts} - set(SIDES))
    if stray:
        raise InputError(f"files go in the fields a and b, not {', '.join(map(repr, stray))}", fields=stray)
    assessments = []
    for side in SIDES:
        mine = [p for p in parts if p.field == side]
        if not mine:
            raise InputError(f"form field {side!r} needs at least one DICOM file", field=side)
        series = one_series(await slots.run(partial(group_series, mine)), f"image {side.upper()}")
        assessments.append(await slots.run(partial(assess_series, assessor, series, side)))
    a, b = assessments
    result = compare(a, b)
    return ComparisonResult.model_validate({**asdict(result), "a": a.report, "b": b.report})
