"""FastAPI dependencies: the settings and the assessor the app was built with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Request

from medgate_common.errors import NotReadyError
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.settings import IqaSettings

T = TypeVar("T")


async def get_settings(request: Request) -> IqaSettings:
    settings: IqaSettings = request.app.state.settings
    return settings


async def get_assessor(request: Request) -> QualityAssessor:
    assessor: QualityAssessor | None = getattr(request.app.state, "assessor", None)
    if assessor is None:
        raise NotReadyError("the quality model is not loaded yet")
    return assessor


SettingsDep = Annotated[IqaSettings, Depends(get_settings)]
AssessorDep = Annotated[QualityAssessor, Depends(get_assessor)]


class ComputeSlots:
    """Runs CPU-bound work in threads, at most ``settings.max_concurrent`` at a time.

    ONNX Runtime already uses every core for one batch; running forty of them at once would
    only make each request slower.
    """

    def __init__(self, limit: int) -> None:
        self.limiter = anyio.CapacityLimiter(limit)

    async def run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self.limiter)


async def get_slots(request: Request) -> ComputeSlots:
    slots: ComputeSlots = request.app.state.slots
    return slots


SlotsDep = Annotated[ComputeSlots, Depends(get_slots)]
