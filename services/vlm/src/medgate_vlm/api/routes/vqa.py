"""``POST /v1/vqa``: one question about one slice of a series, answered by the grounded model with
its rationale and grounding heatmap; ``GET /v1/answers/{id}/heatmap.png``: that heatmap.

A question outside the model's vocabulary of findings is answered ``cannot answer from this
study`` (200, ``answerable: false``, the reason in the rationale), never with a guess.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from medgate_common.api.compute import SlotsDep
from medgate_common.api.results import StorageDep, stored
from medgate_common.errors import InputError
from medgate_vlm import metrics
from medgate_vlm.api.deps import ModelsDep, SettingsDep
from medgate_vlm.api.inputs import choose_slice, lesion_map, read_input
from medgate_vlm.api.schemas import PROBLEMS, VQA_BODY, SliceRef, VqaAnswer
from medgate_vlm.core.report import PNG, png, render_heatmap
from medgate_vlm.core.study import read_series, slice_number

router = APIRouter(prefix="/v1", tags=["vqa"])
AnswerId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The id in heatmap_uri")]
MAX_QUESTION = 500


@router.post(
    "/vqa",
    summary="Ask the grounded VQA model about one series",
    description="The answer, its V2T-CoT rationale (`<rationale>…</rationale><answer>…</answer>`), confidence, "
    "grounding box and a heatmap PNG (`heatmap_uri`). The slice is `instance_number`, else the key slice (largest "
    "lesion area when `segmentation` and the SEG are sent, else the middle slice).",
    openapi_extra=VQA_BODY,
    responses=PROBLEMS,
)
async def ask(
    request: Request, settings: SettingsDep, models: ModelsDep, storage: StorageDep, slots: SlotsDep
) -> VqaAnswer:
    reasoner = models.require_reasoner()
    given = await read_input(request, settings, slots, storage)
    question = given.fields.get("question", "").strip()
    if not question:
        raise InputError("form field 'question' is required", field="question")
    if len(question) > MAX_QUESTION:
        raise InputError(f"a question has at most {MAX_QUESTION} characters", field="question")
    answer_id = uuid.uuid4().hex

    def run() -> VqaAnswer:
        series = read_series(given.images)
        labels = lesion_map(given, series, storage)
        key = choose_slice(given, series, labels)
        asked = reasoner.ask(series, question, key.index)
        result = asked.result
        metrics.ANSWERS.labels(result.intent, str(result.answerable).lower()).inc()
        heatmap_uri = None
        if result.answerable and result.heatmap.any():
            number = slice_number(series, key.index)
            caption = f"image {number} - grounding: {result.grounded.answer}"
            rendering = render_heatmap(series, labels, key.index, result.heatmap, caption)
            storage.put_bytes(f"answers/{answer_id}/heatmap.png", png(rendering))
            heatmap_uri = f"/v1/answers/{answer_id}/heatmap.png"
        return VqaAnswer(
            answer=result.grounded,
            intent=result.intent,
            answerable=result.answerable,
            consistent=result.consistent,
            slice=SliceRef(index=key.index, instance_number=slice_number(series, key.index), reason=key.reason),
            heatmap_uri=heatmap_uri,
        )

    return await slots.run(run)


@router.get(
    "/answers/{answer_id}/heatmap.png",
    summary="The grounding heatmap of an earlier /v1/vqa answer",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}, 404: {"description": "No such answer or no heatmap (not_found)"}},
)
async def heatmap(answer_id: AnswerId, storage: StorageDep) -> Response:
    return Response(stored(storage, f"answers/{answer_id}/heatmap.png", "no heatmap with this id"), media_type=PNG)
