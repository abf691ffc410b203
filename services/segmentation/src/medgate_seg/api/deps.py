"""FastAPI dependencies: the settings and segmenter the app was built with (the result store:
medgate_common.api.results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from medgate_common.errors import NotReadyError
from medgate_common.schemas.models import ModelInfo
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.settings import SegSettings


async def get_settings(request: Request) -> SegSettings:
    settings: SegSettings = request.app.state.settings
    return settings


async def get_segmenter(request: Request) -> Segmenter:
    segmenter: Segmenter | None = getattr(request.app.state, "segmenter", None)
    if segmenter is None:
        raise NotReadyError("the lesion model is not loaded yet")
    return segmenter


async def model_info(request: Request) -> ModelInfo:
    return (await get_segmenter(request)).model.backend.info


SettingsDep = Annotated[SegSettings, Depends(get_settings)]
SegmenterDep = Annotated[Segmenter, Depends(get_segmenter)]
