"""Bounded threads for CPU-bound work of an API (model inference, pixel decoding)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request

T = TypeVar("T")


class ComputeSlots:
    """Runs CPU-bound work in threads, at most ``limit`` at a time.

    ONNX Runtime already uses every core for one batch; running forty of them at once would
    only make each request slower.
    """

    def __init__(self, limit: int) -> None:
        self.limiter = anyio.CapacityLimiter(limit)

    async def run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self.limiter)


async def get_slots(request: Request) -> ComputeSlots:
    """The app's slots, kept in ``app.state.slots`` by its factory."""
    slots: ComputeSlots = request.app.state.slots
    return slots


SlotsDep = Annotated[ComputeSlots, Depends(get_slots)]
