"""FastAPI dependencies: the settings and models the app was built with (the result store:
medgate_common.api.results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from medgate_common.errors import NotReadyError
from medgate_common.schemas.models import ModelInfo
from medgate_vlm.runtime import Models
from medgate_vlm.settings import VlmSettings


async def get_settings(request: Request) -> VlmSettings:
    settings: VlmSettings = request.app.state.settings
    return settings


async def get_models(request: Request) -> Models:
    models: Models | None = getattr(request.app.state, "models", None)
    if models is None:
        raise NotReadyError("the reasoning models are not loaded yet")
    return models


async def model_info(request: Request) -> ModelInfo:
    """The grounded VQA model's identity; 503 while it is loading or when it is not installed."""
    return (await get_models(request)).require_reasoner().vqa_info


SettingsDep = Annotated[VlmSettings, Depends(get_settings)]
ModelsDep = Annotated[Models, Depends(get_models)]
