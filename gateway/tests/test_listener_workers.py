"""Listener worker processes: they share the port, and a killed one is replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_listener import send

from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Instance
from medgate_gateway.listener import DicomListener
from medgate_gateway.listener.workers import WorkerPool

pytestmark = pytest.mark.integration


def test_a_killed_worker_is_replaced_and_nothing_is_lost(
    context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    settings = context.settings.model_copy(update={"dicom_workers": 2})
    parent = DicomListener(context.ingestor, settings, reuse_port=True)
    parent.start()
    pool = WorkerPool(settings, parent.port, watch_interval=0.1)
    pool.start()
    try:
        (victim,) = pool.pids
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while pool.restarts < 1 or not pool.pids:
            assert time.monotonic() < deadline, "the pool did not restart its worker"
            time.sleep(0.1)
        assert pool.pids != [victim]
        blobs = [f.read_bytes() for f in sorted((small_ct[1] / "dicom").glob("*.dcm"))]
        statuses = [s for i in range(12) for s in send(parent.port, blobs[i::12], calling=f"MOD{i}")]
        assert statuses == [0] * len(blobs)
        with context.db.read() as session:
            assert session.scalar(select(func.count()).select_from(Instance)) == len(blobs)
    finally:
        pool.stop()
        parent.stop()
    assert pool.pids == []
