"""Store-and-index on both databases: idempotence, conflicts, failures that leave nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gateway_fixtures import FullDisk, fresh_copy, modified, sample_path
from sqlalchemy import func, select

from medgate_common.errors import ConflictError, InvalidDicomError, PayloadTooLargeError, StorageError
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import AuditEvent, Instance, Series, Study
from medgate_gateway.ingest.ingestor import Ingestor, Outcome, Source

pytestmark = pytest.mark.integration
SOURCE = Source(transport="stow", actor="tester", role="technologist", client="127.0.0.1")


def count(context: GatewayContext, model: type) -> int:
    with context.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def stored_files(context: GatewayContext) -> list[Path]:
    return sorted(p for p in context.storage.root.rglob("*.dcm"))


def test_series_is_stored_and_indexed(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    _study, out = small_ct
    files = sorted((out / "dicom").glob("*.dcm"))
    results = [context.ingestor.ingest(f.read_bytes(), SOURCE) for f in files]
    assert {r.outcome for r in results} == {Outcome.STORED}
    with context.db.read() as session:
        study = session.scalars(select(Study)).one()
        series = session.scalars(select(Series)).one()
        instances = session.scalars(select(Instance).order_by(Instance.instance_number)).all()
    assert study.num_instances == series.num_instances == len(files)
    assert study.num_series == 1 and study.modalities == "CT" and study.state == "receiving"
    assert [i.instance_number for i in instances] == list(range(1, len(files) + 1))
    for inst, original in zip(instances, files, strict=True):
        path = context.storage.path_for(inst.storage_uri)
        assert path.read_bytes() == original.read_bytes()
        # the path is made of validated UIDs only
        assert path.relative_to(context.storage.root).parts[:3] == ("dicom", study.study_uid, series.series_uid)
    assert count(context, AuditEvent) == len(files)


def test_same_instance_twice_is_idempotent(context: GatewayContext) -> None:
    data = sample_path("explicit").read_bytes()
    first = context.ingestor.ingest(data, SOURCE)
    written = context.storage.path_for(first.storage_uri).stat()
    second = context.ingestor.ingest(data, SOURCE)
    again = context.storage.path_for(first.storage_uri).stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)  # not rewritten
    assert (first.outcome, second.outcome) == (Outcome.STORED, Outcome.DUPLICATE)
    assert second.storage_uri == first.storage_uri
    assert count(context, Instance) == 1
    with context.db.read() as session:
        assert session.scalars(select(Study)).one().num_instances == 1
    assert len(stored_files(context)) == 1


def test_different_object_under_same_uid_is_rejected_and_logged(
    context: GatewayContext, caplog: pytest.LogCaptureFixture
) -> None:
    data = sample_path("explicit").read_bytes()
    context.ingestor.ingest(data, SOURCE)
    other = modified(data, PatientName="Other^Object")
    with pytest.raises(ConflictError):
        context.ingestor.ingest(other, SOURCE)
    assert count(context, Instance) == 1
    files = stored_files(context)
    assert len(files) == 1 and files[0].read_bytes() == data  # the original is untouched
    with context.db.read() as session:
        outcomes = session.scalars(select(AuditEvent.outcome).order_by(AuditEvent.id)).all()
    assert outcomes == ["ok", "conflict"]
    assert any("different object" in r.getMessage() for r in caplog.records)


def test_invalid_input_leaves_nothing(context: GatewayContext) -> None:
    data = sample_path("explicit").read_bytes()
    for bad in (b"not dicom at all" * 20, data[:-500], modified(data, SOPInstanceUID=None)):
        with pytest.raises(InvalidDicomError):
            context.ingestor.ingest(bad, SOURCE)
    assert count(context, Instance) == count(context, Study) == 0
    assert stored_files(context) == []


def test_oversized_instance_is_refused(context: GatewayContext) -> None:
    small = Ingestor(context.db, context.storage, context.settings.model_copy(update={"max_instance_bytes": 1000}))
    with pytest.raises(PayloadTooLargeError):
        small.ingest(sample_path("explicit").read_bytes(), SOURCE)
    assert count(context, Instance) == 0


def test_disk_failure_indexes_nothing_for_the_failed_instance(
    context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    _study, out = small_ct
    files = sorted((out / "dicom").glob("*.dcm"))[:5]
    storage = FullDisk(context.storage.root, room=3)
    ingestor = Ingestor(context.db, storage, context.settings)
    for f in files[:3]:
        ingestor.ingest(f.read_bytes(), SOURCE)
    for f in files[3:]:
        with pytest.raises(StorageError):
            ingestor.ingest(f.read_bytes(), SOURCE)
    assert count(context, Instance) == 3
    assert len(stored_files(context)) == 3
    assert not list(context.storage.root.rglob(".incoming-*"))


def test_index_failure_removes_the_written_file(context: GatewayContext, monkeypatch: pytest.MonkeyPatch) -> None:
    import medgate_gateway.ingest.ingestor as module

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(module, "index_instance", broken)
    with pytest.raises(RuntimeError):
        context.ingestor.ingest(sample_path("explicit").read_bytes(), SOURCE)
    assert stored_files(context) == []


def test_concurrent_senders_of_one_series(context: GatewayContext, small_ct: tuple[object, Path]) -> None:
    """Four threads deliver one series (and each other's duplicates) at once."""
    _study, out = small_ct
    files = sorted((out / "dicom").glob("*.dcm"))
    blobs = [f.read_bytes() for f in files]
    errors: list[BaseException] = []

    def send(offset: int) -> None:
        try:
            for data in blobs[offset:] + blobs[:offset]:
                context.ingestor.ingest(data, SOURCE)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i * 6,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(context, Instance) == len(files)
    with context.db.read() as session:
        study = session.scalars(select(Study)).one()
    assert (study.num_instances, study.num_series) == (len(files), 1)
    assert len(stored_files(context)) == len(files)


def test_public_samples_of_every_transfer_syntax(context: GatewayContext) -> None:
    for name in (
        "explicit",
        "implicit",
        "deflate",
        "jpeg-baseline",
        "jpeg-ls",
        "jpeg2000",
        "rle",
        "compressed-ct",
        "multiframe-mr",
    ):
        result = context.ingestor.ingest(fresh_copy(sample_path(name)), SOURCE)
        assert result.outcome is Outcome.STORED
    with context.db.read() as session:
        frames = session.scalars(select(Instance.number_of_frames).order_by(Instance.id)).all()
    assert frames[-1] == 10  # emri_small is a 10-frame enhanced MR
