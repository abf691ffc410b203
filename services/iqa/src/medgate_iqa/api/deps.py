"""FastAPI dependencies: the settings and the assessor the app was built with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from medgate_common.errors import NotReadyError
from medgate_common.schemas.models import ModelInfo
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.settings import IqaSettings


async def get_settings(request: Request) -> IqaSettings:
    settings: IqaSettings = request.app.state.settings
    return settings


async def get_assessor(request: Request) -> QualityAssessor:
    assessor: QualityAssessor | None = getattr(request.app.state, "assessor", None)
    if assessor is None:
        raise NotReadyError("the quality model is not loaded yet")
    return assessor


async def model_info(request: Request) -> ModelInfo:
    return (await get_assessor(request)).model.info


SettingsDep = Annotated[IqaSettings, Depends(get_settings)]
AssessorDep = Annotated[QualityAssessor, Depends(get_assessor)]
