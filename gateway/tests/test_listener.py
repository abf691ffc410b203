"""The DICOM listener over real loopback associations: dcmtk's tools and pynetdicom SCUs."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from gateway_fixtures import fresh_copy, modified, sample_path
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from sqlalchemy import func, select

from conftest import require_tool
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import AuditEvent, Instance, Study
from medgate_gateway.dimse_status import CONFLICT, DATASET_MISMATCH, MISSING_TAG, status_for
from medgate_gateway.ingest.ingestor import Source
from medgate_gateway.ingest.parse import SopMismatchError
from medgate_gateway.listener import DicomListener
from medgate_gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


@pytest.fixture
def listener(context: GatewayContext) -> Iterator[DicomListener]:
    server = DicomListener(context.ingestor, context.settings)
    server.start()
    yield server
    server.stop()


def n_instances(context: GatewayContext) -> int:
    with context.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def associate(port: int, *datasets: pydicom.Dataset, calling: str = "SCU", ts: list[str] | None = None) -> Association:
    ae = AE(ae_title=calling)
    for ds in datasets:
        syntaxes = ts or [str(ds.file_meta.TransferSyntaxUID)]
        context = build_context(ds.SOPClassUID, syntaxes)
        if all(
            c.abstract_syntax != context.abstract_syntax or c.transfer_syntax != syntaxes for c in ae.requested_contexts
        ):
            ae.add_requested_context(ds.SOPClassUID, syntaxes)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDGATE")
    if assoc.is_established:
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    return assoc


def send(port: int, blobs: list[bytes], calling: str = "SCU") -> list[int]:
    datasets = [pydicom.dcmread(io.BytesIO(b)) for b in blobs]
    assoc = associate(port, *datasets, calling=calling)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def test_echoscu(listener: DicomListener) -> None:
    result = subprocess.run(
        [require_tool("echoscu"), "-aec", "MEDGATE", "127.0.0.1", str(listener.port)],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_storescu_sends_a_series(
    listener: DicomListener, context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    files = sorted((small_ct[1] / "dicom").glob("*.dcm"))
    result = subprocess.run(
        [require_tool("storescu"), "-aet", "CT1", "-aec", "MEDGATE", "127.0.0.1", str(listener.port), *map(str, files)],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert n_instances(context) == len(files)
    with context.db.read() as session:
        study = session.scalars(select(Study)).one()
        actors = set(session.scalars(select(AuditEvent.actor)))
    assert study.last_calling_ae == "CT1" and study.num_instances == len(files)
    assert actors == {"ae:CT1"}
    # the stored files are the sent data sets under a file header that names the sender
    with context.db.read() as session:
        uri = session.scalars(select(Instance.storage_uri).where(Instance.instance_number == 1)).one()
    stored = pydicom.dcmread(context.storage.path_for(uri))
    sent = pydicom.dcmread(files[0])
    assert stored.file_meta.SourceApplicationEntityTitle == "CT1"
    assert stored.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert stored.PixelData == sent.PixelData and stored.PatientName == sent.PatientName


def test_every_supported_transfer_syntax_over_dimse(listener: DicomListener, context: GatewayContext) -> None:
    names = [
        "explicit",
        "implicit",
        "deflate",
        "jpeg-baseline",
        "jpeg-lossless",
        "jpeg-ls",
        "jpeg2000",
        "rle",
        "multiframe-mr",
    ]
    statuses = send(listener.port, [fresh_copy(sample_path(n)) for n in names])
    assert statuses == [0] * len(names)
    with context.db.read() as session:
        syntaxes = set(session.scalars(select(Instance.transfer_syntax_uid)))
    expected = {
        str(pydicom.dcmread(sample_path(n), stop_before_pixels=True).file_meta.TransferSyntaxUID) for n in names
    }
    assert syntaxes == expected


def test_unsupported_transfer_syntax_is_not_negotiated(listener: DicomListener, context: GatewayContext) -> None:
    ds = pydicom.dcmread(sample_path("explicit"))
    big_endian = "1.2.840.10008.1.2.2"  # explicit VR big endian (retired)
    alone = associate(listener.port, ds, ts=[big_endian])
    assert not alone.is_established  # no presentation context accepted: the SCU aborts
    both = associate(listener.port, ds, ts=[big_endian, "1.2.840.10008.1.2.1"])
    try:
        assert both.is_established
        assert [c.transfer_syntax for c in both.accepted_contexts] == [["1.2.840.10008.1.2.1"]]
    finally:
        both.release()
    assert n_instances(context) == 0


def test_bad_data_sets_get_dimse_errors_and_nothing_is_indexed(
    listener: DicomListener, context: GatewayContext
) -> None:
    good = sample_path("explicit").read_bytes()
    missing_study = modified(good, StudyInstanceUID=None)
    statuses = send(listener.port, [missing_study])
    assert statuses == [MISSING_TAG]
    assert n_instances(context) == 0


def test_duplicates_succeed_and_conflicts_are_refused(listener: DicomListener, context: GatewayContext) -> None:
    good = sample_path("explicit").read_bytes()
    conflict = modified(good, PatientName="Someone^Else")
    assert send(listener.port, [good, good, conflict]) == [0, 0, CONFLICT]
    assert n_instances(context) == 1


def test_command_and_data_set_must_agree(context: GatewayContext) -> None:
    """The C-STORE handler passes the command's UIDs; a data set that differs is refused.

    pynetdicom's SCU always copies the UIDs from the data set into the command, so the
    mismatch is driven through the ingest call the handler makes.
    """
    data = sample_path("explicit").read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    with pytest.raises(SopMismatchError) as info:
        context.ingestor.ingest(data, Source(transport="dimse", actor="ae:X"), expect=(ds.SOPClassUID, "1.2.3.4"))
    assert status_for(info.value) == DATASET_MISMATCH
    assert n_instances(context) == 0


def test_four_associations_at_once(
    listener: DicomListener, context: GatewayContext, small_ct: tuple[object, Path]
) -> None:
    blobs = [f.read_bytes() for f in sorted((small_ct[1] / "dicom").glob("*.dcm"))]
    results: list[list[int]] = [[] for _ in range(4)]

    def worker(i: int) -> None:
        results[i] = send(listener.port, blobs[i::4], calling=f"SCU{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for r in results for s in r] == [0] * len(blobs)
    assert n_instances(context) == len(blobs)


@pytest.fixture
def guarded(context: GatewayContext) -> Iterator[DicomListener]:
    settings: GatewaySettings = context.settings.model_copy(
        update={"allowed_aes": ["CT1", "PACS@127.0.0.1", "REMOTE@10.9.9.9"]}
    )
    server = DicomListener(context.ingestor, settings)
    server.start()
    yield server
    server.stop()


def test_allow_list_admits_known_aes(guarded: DicomListener, context: GatewayContext) -> None:
    data = fresh_copy(sample_path("explicit"))
    assert send(guarded.port, [data], calling="PACS") == [0]
    assert send(guarded.port, [fresh_copy(sample_path("explicit"))], calling="CT1") == [0]
    assert n_instances(context) == 2


@pytest.mark.parametrize("calling", ["INTRUDER", "REMOTE"])  # unknown AE; known AE from the wrong host
def test_allow_list_rejects_unknown_calling_ae(guarded: DicomListener, context: GatewayContext, calling: str) -> None:
    files = [str(sample_path("explicit"))]
    result = subprocess.run(
        [require_tool("storescu"), "-aet", calling, "-aec", "MEDGATE", "127.0.0.1", str(guarded.port), *files],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr or "rejected" in result.stderr.lower()
    assert n_instances(context) == 0
    with context.db.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.outcome, AuditEvent.action)).all()
    assert rows == [(f"ae:{calling}", "rejected", "dicom.associate")]


def test_listener_port_and_stop(context: GatewayContext) -> None:
    server = DicomListener(context.ingestor, context.settings)
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    port = server.port
    server.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
