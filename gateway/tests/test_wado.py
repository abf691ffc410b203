"""WADO-RS through the real dicomweb-client against uvicorn, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from requests import HTTPError
from sqlalchemy import select

from medgate_common.synth import SynthStudy
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import AuditEvent
from medgate_gateway.dicomweb.multipart import MultipartReader, parse_media_type
from medgate_gateway.ingest.ingestor import Source

pytestmark = [pytest.mark.integration]

SAMPLES = {
    "native": None,  # a synthetic CT slice, Explicit VR Little Endian
    "multiframe": "emri_small.dcm",  # 10 frames, Explicit VR Little Endian
    "jpeg-ls": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg2000": "JPEG2000.dcm",  # lossy JPEG 2000
    "deflated": "image_dfl.dcm",
    "implicit": "rtplan.dcm",  # no pixel data
}


@dataclass(frozen=True)
class Stored:
    path: Path
    ds: Dataset

    @property
    def uids(self) -> tuple[str, str, str]:
        return str(self.ds.StudyInstanceUID), str(self.ds.SeriesInstanceUID), str(self.ds.SOPInstanceUID)

    def frame(self, index: int) -> bytes:
        pixels = self.ds.pixel_array
        frames = int(self.ds.get("NumberOfFrames") or 1)
        return np.ascontiguousarray(pixels[index] if frames > 1 else pixels).tobytes()


def with_bulk_values(path: Path) -> bytes:
    """A CT slice with a private 4 KiB OB value and an icon image (nested pixel data)."""
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 99
    block = ds.private_block(0x0009, "MEDGATE TEST", create=True)
    block.add_new(0x10, "OB", bytes(range(256)) * 16)
    icon = Dataset()
    icon.Rows = icon.Columns = 32
    icon.SamplesPerPixel, icon.BitsAllocated, icon.BitsStored, icon.HighBit = 1, 16, 16, 15
    icon.PhotometricInterpretation, icon.PixelRepresentation = "MONOCHROME2", 0
    icon.add_new(0x7FE00010, "OW", np.arange(1024, dtype="<u2").tobytes())
    ds.IconImageSequence = [icon]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def stored(context: GatewayContext, small_ct: tuple[SynthStudy, Path], tmp_path: Path) -> dict[str, Stored]:
    ct_files = sorted((small_ct[1] / "dicom").glob("*.dcm"))[:3]
    bulky = tmp_path / "bulky.dcm"
    bulky.write_bytes(with_bulk_values(ct_files[0]))
    paths = {name: Path(str(get_testdata_file(file))) if file else ct_files[0] for name, file in SAMPLES.items()}
    paths |= {"second": ct_files[1], "third": ct_files[2], "bulky": bulky}
    out = {}
    for name, path in paths.items():
        context.ingestor.ingest(path.read_bytes(), Source(transport="stow", actor="test"))
        out[name] = Stored(path, pydicom.dcmread(path))
    return out


@pytest.fixture
def client(live_server: str, credentials) -> DICOMwebClient:
    return DICOMwebClient(url=live_server + "/dicomweb", headers=credentials.radiologist)


def reachable(uri: str, live_server: str) -> str:
    """dicomweb-client sends "Host: 127.0.0.1" without the port, and the gateway builds URLs from
    the Host header unless ``public_url`` is set; put the live server's port back."""
    assert uri.startswith("http://127.0.0.1/dicomweb/"), uri
    return live_server + uri.removeprefix("http://127.0.0.1")


def multipart(resp: httpx.Response) -> tuple[str, list[bytes]]:
    media = parse_media_type(resp.headers["content-type"])
    assert media.type == "multipart/related"
    reader = MultipartReader(media.params["boundary"], max_part_bytes=1 << 30)
    parts = list(reader.feed(resp.content))
    reader.close()
    return media.params["type"], [p.body for p in parts]


def test_retrieve_instance_sends_the_stored_file(
    stored: dict[str, Stored], client: DICOMwebClient, live_server: str, credentials
) -> None:
    for name in ("native", "jpeg-ls", "deflated"):
        item = stored[name]
        got = client.retrieve_instance(*item.uids)  # asks for transfer-syntax=*: as stored
        assert got.SOPInstanceUID == item.ds.SOPInstanceUID
        assert got.file_meta.TransferSyntaxUID == item.ds.file_meta.TransferSyntaxUID
        assert got.PixelData == item.ds.PixelData, name
    study, series, instance = stored["native"].uids
    url = f"{live_server}/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    resp = httpx.get(
        url,
        headers={**credentials.radiologist, "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    part_type, bodies = multipart(resp)
    assert part_type == "application/dicom"
    assert bodies == [stored["native"].path.read_bytes()]  # byte for byte


def test_retrieve_study_and_series_default_to_explicit_little_endian(
    stored: dict[str, Stored], client: DICOMwebClient
) -> None:
    jls = stored["jpeg-ls"]
    [got] = list(client.retrieve_study(jls.uids[0]))  # no transfer-syntax: Explicit VR LE (PS3.18 8.7.3)
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert got.SOPInstanceUID == jls.ds.SOPInstanceUID
    assert np.array_equal(got.pixel_array, jls.ds.pixel_array)
    [plan] = list(client.retrieve_series(*stored["implicit"].uids[:2]))
    assert plan.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert plan.SOPInstanceUID == stored["implicit"].ds.SOPInstanceUID
    assert plan.RTPlanLabel == stored["implicit"].ds.RTPlanLabel
    [as_stored] = list(client.retrieve_series(*jls.uids[:2], media_types=(("application/dicom", "*"),)))
    assert as_stored.file_meta.TransferSyntaxUID == jls.ds.file_meta.TransferSyntaxUID
    ct = list(client.retrieve_series(*stored["native"].uids[:2]))
    assert [int(ds.InstanceNumber) for ds in ct] == [1, 2, 3, 99]


def test_unacceptable_transfer_syntax_is_406(stored: dict[str, Stored], live_server: str, credentials) -> None:
    study, series, instance = stored["native"].uids
    url = f"{live_server}/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    resp = httpx.get(url, headers={**credentials.radiologist, "Accept": accept})
    assert resp.status_code == 406
    assert resp.json()["code"] == "not_acceptable"
    frames = httpx.get(
        url + "/frames/1", headers={**credentials.radiologist, "Accept": 'multipart/related; type="image/jls"'}
    )
    assert frames.status_code == 406


def test_metadata_and_bulk_data(stored: dict[str, Stored], client: DICOMwebClient, live_server: str) -> None:
    ct = stored["native"]
    study, series, _ = ct.uids
    metadata = client.retrieve_series_metadata(study, series)
    assert len(metadata) == 4
    assert {m["00080018"]["Value"][0] for m in metadata} == {
        str(stored[n].ds.SOPInstanceUID) for n in ("native", "second", "third", "bulky")
    }
    first = next(m for m in metadata if m["00080018"]["Value"][0] == ct.uids[2])
    assert first["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": str(ct.ds.PatientName)}]}
    assert first["00280010"] == {"vr": "US", "Value": [128]}
    pixel_uri = reachable(first["7FE00010"]["BulkDataURI"], live_server)
    assert first["7FE00010"]["vr"] == "OW"
    assert client.retrieve_bulkdata(pixel_uri) == [ct.frame(0)]
    parsed = Dataset.from_json(first, bulk_data_uri_handler=lambda *_: b"")
    assert parsed.StudyInstanceUID == study and parsed.Modality == "CT"

    bulky = stored["bulky"]
    meta = client.retrieve_instance_metadata(*bulky.uids)
    private = next(v for k, v in meta.items() if k.startswith("0009") and v["vr"] == "OB")
    assert client.retrieve_bulkdata(reachable(private["BulkDataURI"], live_server)) == [bytes(range(256)) * 16]
    icon = meta["00880200"]["Value"][0]["7FE00010"]
    assert icon["BulkDataURI"].endswith("/bulkdata/00880200/0/7FE00010")
    assert client.retrieve_bulkdata(reachable(icon["BulkDataURI"], live_server)) == [
        np.arange(1024, dtype="<u2").tobytes()
    ]
    assert meta["00280010"]["Value"] == [128]  # small values stay inline
    assert len(client.retrieve_study_metadata(study)) == 4

    emri = client.retrieve_instance_metadata(*stored["multiframe"].uids)
    assert emri["00280008"]["Value"] == [10]
    assert len(client.retrieve_bulkdata(reachable(emri["7FE00010"]["BulkDataURI"], live_server))) == 10


def test_frames_of_native_instances(stored: dict[str, Stored], client: DICOMwebClient) -> None:
    ct = stored["native"]
    assert client.retrieve_instance_frames(*ct.uids, frame_numbers=[1]) == [ct.frame(0)]
    emri = stored["multiframe"]
    frames = client.retrieve_instance_frames(*emri.uids, frame_numbers=[2, 5, 10, 2])
    assert frames == [emri.frame(1), emri.frame(4), emri.frame(9), emri.frame(1)]
    octet = client.retrieve_instance_frames(*emri.uids, frame_numbers=[3], media_types=("application/octet-stream",))
    assert octet == [emri.frame(2)]
    deflated = stored["deflated"]
    assert client.retrieve_instance_frames(*deflated.uids, frame_numbers=[1]) == [deflated.frame(0)]


@pytest.mark.parametrize("name", ["jpeg-ls", "jpeg2000"])
def test_frames_of_compressed_instances(name: str, stored: dict[str, Stored], client: DICOMwebClient) -> None:
    item = stored[name]
    ts = str(item.ds.file_meta.TransferSyntaxUID)
    media = {"jpeg-ls": "image/jls", "jpeg2000": "image/jp2"}[name]
    decoded = client.retrieve_instance_frames(*item.uids, frame_numbers=[1], media_types=("application/octet-stream",))
    assert decoded == [item.frame(0)]
    assert client.retrieve_instance_frames(*item.uids, frame_numbers=[1]) == [item.frame(0)]  # */*: uncompressed
    native = client.retrieve_instance_frames(*item.uids, frame_numbers=[1], media_types=((media, ts),))
    assert native == [next(generate_frames(item.ds.PixelData, number_of_frames=1))]
    assert client.retrieve_instance_frames(*item.uids, frame_numbers=[1], media_types=(media,)) == native


def test_missing_resources_are_404(
    stored: dict[str, Stored], client: DICOMwebClient, live_server: str, credentials
) -> None:
    study, series, instance = stored["native"].uids
    other_series = stored["multiframe"].uids[1]
    for call in (
        lambda: client.retrieve_study("1.2.3.4"),
        lambda: list(client.retrieve_series(study, "1.2.3.4")),
        lambda: client.retrieve_instance(study, other_series, instance),  # real UIDs, wrong parent
        lambda: client.retrieve_series_metadata(study, "1.2.3.4"),
        lambda: client.retrieve_instance_frames(study, series, instance, frame_numbers=[2]),
        lambda: client.retrieve_instance_frames(*stored["multiframe"].uids, frame_numbers=[11]),
        lambda: client.retrieve_instance_frames(*stored["implicit"].uids, frame_numbers=[1]),
    ):
        with pytest.raises(HTTPError) as raised:
            call()
        assert raised.value.response.status_code == 404
        assert raised.value.response.headers["content-type"] == "application/problem+json"
    url = f"{live_server}/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    assert httpx.get(url + "/frames/0", headers=credentials.radiologist).status_code == 404
    assert httpx.get(url + "/frames/1,x", headers=credentials.radiologist).status_code == 400
    assert httpx.get(url + "/bulkdata/00091010/1/00000000", headers=credentials.radiologist).status_code == 404
    assert httpx.get(url + "/bulkdata/0009zz10", headers=credentials.radiologist).status_code == 400


def test_authentication_and_permission(stored: dict[str, Stored], live_server: str, credentials) -> None:
    url = live_server + "/dicomweb"
    study, series, instance = stored["native"].uids
    with pytest.raises(HTTPError) as unauthenticated:
        DICOMwebClient(url=url).retrieve_instance(study, series, instance)
    assert unauthenticated.value.response.status_code == 401
    site = DICOMwebClient(url=url, headers=credentials.site)
    for call in (
        lambda: site.retrieve_study_metadata(study),
        lambda: site.retrieve_instance_frames(study, series, instance, [1]),
    ):
        with pytest.raises(HTTPError) as forbidden:
            call()
        assert forbidden.value.response.status_code == 403


def test_every_retrieval_is_audited(stored: dict[str, Stored], context: GatewayContext, client: DICOMwebClient) -> None:
    study, series, instance = stored["native"].uids
    list(client.retrieve_series(study, series))
    client.retrieve_instance_metadata(study, series, instance)
    client.retrieve_instance_frames(*stored["multiframe"].uids, frame_numbers=[1, 3])
    with pytest.raises(HTTPError):
        client.retrieve_study("1.2.3.4")
    with context.db.read() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dicom.retrieve").order_by(AuditEvent.id)
        ).all()
    assert [(r.resource_type, r.resource_uid, r.outcome, r.detail.get("what")) for r in rows] == [
        ("series", series, "ok", "instances"),
        ("instance", instance, "ok", "metadata"),
        ("instance", stored["multiframe"].uids[2], "ok", "frames"),
        ("study", "1.2.3.4", "not_found", "instances"),
    ]
    assert rows[0].detail == {"study": study, "what": "instances", "count": 4}
    assert rows[2].detail["frames"] == [1, 3]
    assert all(r.actor == "rad" for r in rows)
