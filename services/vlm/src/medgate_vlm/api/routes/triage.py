"""``POST /v1/triage``: the abnormality score of a study from its key slice."""

from __future__ import annotations

from fastapi import APIRouter, Request

from medgate_common.api.compute import SlotsDep
from medgate_common.api.results import StorageDep
from medgate_vlm import metrics
from medgate_vlm.api.deps import ModelsDep, SettingsDep
from medgate_vlm.api.inputs import choose_slice, lesion_map, read_input
from medgate_vlm.api.schemas import PROBLEMS, TRIAGE_BODY, SliceRef, TriageAnswer
from medgate_vlm.core.study import read_series, slice_number

router = APIRouter(prefix="/v1", tags=["triage"])


@router.post(
    "/triage",
    summary="Triage score of one series",
    description="The FL-trained classifier's probability that the study is abnormal, from one key slice: the "
    "slice with the largest lesion area when the series' SEG and `segmentation` are sent, else the middle slice "
    "(or `instance_number`). 503 `not_ready` when no triage model is installed: a score is never made up.",
    openapi_extra=TRIAGE_BODY,
    responses=PROBLEMS,
)
async def triage(
    request: Request, settings: SettingsDep, models: ModelsDep, storage: StorageDep, slots: SlotsDep
) -> TriageAnswer:
    model = models.require_triage()
    given = await read_input(request, settings, slots, storage)

    def run() -> TriageAnswer:
        series = read_series(given.images)
        key = choose_slice(given, series, lesion_map(given, series, storage))
        scored = model.score(series.volume.array, key)
        metrics.TRIAGE.labels(scored.score.label).inc()
        return TriageAnswer(
            triage=scored.score,
            slice=SliceRef(index=key.index, instance_number=slice_number(series, key.index), reason=key.reason),
        )

    return await slots.run(run)
