"""Study completeness: quiet time per calling AE, the STOW hint, late instances."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import utcnow
from medgate_gateway.ingest.completeness import StudyReady, StudyTracker
from medgate_gateway.ingest.ingestor import Ingestor, Source

pytestmark = pytest.mark.integration


def series_bytes(small: tuple[object, Path]) -> list[bytes]:
    return [f.read_bytes() for f in sorted((small[1] / "dicom").glob("*.dcm"))]


def test_ready_after_quiet_time_then_reopened_by_late_instance(
    context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    events: list[StudyReady] = []
    tracker = StudyTracker(context.db, events.append)
    blobs = series_bytes(small_ct)
    source = Source(transport="dimse", actor="ae:CT1", calling_ae="CT1")
    for data in blobs[:-1]:
        context.ingestor.ingest(data, source)
    now = utcnow()
    assert tracker.sweep(now + dt.timedelta(seconds=59)) == []  # default quiet time is 60 s
    ready = tracker.sweep(now + dt.timedelta(seconds=61))
    assert [e.num_instances for e in ready] == [len(blobs) - 1]
    assert ready[0].reason == "quiet" and ready[0].times_ready == 1
    assert tracker.sweep(now + dt.timedelta(seconds=120)) == []  # handed over once

    context.ingestor.ingest(blobs[-1], source)  # a late instance re-opens the study
    later = utcnow() + dt.timedelta(seconds=61)
    again = tracker.sweep(later)
    assert [(e.num_instances, e.times_ready) for e in again] == [(len(blobs), 2)]
    assert events == ready + again


def test_quiet_time_per_calling_ae(
    context: GatewayContext, small_ct: tuple[object, Path], small_mr: tuple[object, Path]
) -> None:
    settings = context.settings.model_copy(update={"stable_seconds_by_ae": {"FASTCT": 5.0}})
    ingestor = Ingestor(context.db, context.storage, settings)
    for data in series_bytes(small_ct):
        ingestor.ingest(data, Source(transport="dimse", actor="ae:FASTCT", calling_ae="FASTCT"))
    for data in series_bytes(small_mr):
        ingestor.ingest(data, Source(transport="dimse", actor="ae:SLOWMR", calling_ae="SLOWMR"))
    tracker = StudyTracker(context.db)
    soon = tracker.sweep(utcnow() + dt.timedelta(seconds=10))
    assert [e.study_uid for e in soon] == [small_ct[0].header.study_uid]  # type: ignore[attr-defined]
    late = tracker.sweep(utcnow() + dt.timedelta(seconds=61))
    assert [e.study_uid for e in late] == [small_mr[0].header.study_uid]  # type: ignore[attr-defined]


def test_complete_hint_makes_a_study_ready_at_once(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    events: list[StudyReady] = []
    tracker = StudyTracker(context.db, events.append)
    for data in series_bytes(small_ct):
        context.ingestor.ingest(data, Source(transport="stow", actor="u"))
    event = tracker.mark_complete(small_ct[0].header.study_uid)  # type: ignore[attr-defined]
    assert event is not None and event.reason == "complete-hint"
    assert tracker.mark_complete(small_ct[0].header.study_uid) is None  # type: ignore[attr-defined]
    assert len(events) == 1


def test_two_sweepers_hand_each_study_over_once(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    for data in series_bytes(small_ct):
        context.ingestor.ingest(data, Source(transport="stow", actor="u"))
    seen: list[StudyReady] = []
    a, b = StudyTracker(context.db, seen.append), StudyTracker(context.db, seen.append)
    when = utcnow() + dt.timedelta(minutes=5)
    assert len(a.sweep(when)) + len(b.sweep(when)) == 1
    assert len(seen) == 1


def test_a_failing_handler_does_not_stop_the_sweeper(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    def explode(_event: StudyReady) -> None:
        raise RuntimeError("workflow unavailable")

    for data in series_bytes(small_ct):
        context.ingestor.ingest(data, Source(transport="stow", actor="u"))
    tracker = StudyTracker(context.db, explode)
    assert len(tracker.sweep(utcnow() + dt.timedelta(minutes=5))) == 1


def test_background_sweeper_thread(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    import threading

    settings = context.settings.model_copy(update={"stable_seconds": 0.2})
    ingestor = Ingestor(context.db, context.storage, settings)
    done = threading.Event()
    tracker = StudyTracker(context.db, lambda e: done.set(), interval=0.05)
    tracker.start()
    try:
        for data in series_bytes(small_ct)[:3]:
            ingestor.ingest(data, Source(transport="stow", actor="u"))
        assert done.wait(5)
    finally:
        tracker.stop()
