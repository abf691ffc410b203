"""QIDO-RS through the real dicomweb-client against uvicorn, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from requests import HTTPError
from sqlalchemy import select

from medgate_common.synth import SynthStudy
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import AuditEvent, Patient, Study
from medgate_gateway.ingest.ingestor import Source

pytestmark = [pytest.mark.integration]

SAMPLES = ("emri_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm")


@dataclass(frozen=True)
class Loaded:
    ct: SynthStudy
    mr: SynthStudy
    ct_files: list[Path]
    samples: dict[str, pydicom.Dataset]  # file name -> header

    def study_dates(self) -> dict[str, str]:
        dates = {
            self.ct.header.study_uid: self.ct.header.study_date,
            self.mr.header.study_uid: self.mr.header.study_date,
        }
        dates |= {str(ds.StudyInstanceUID): str(ds.StudyDate) for ds in self.samples.values()}
        return dates


def ingest(context: GatewayContext, path: Path) -> None:
    context.ingestor.ingest(path.read_bytes(), Source(transport="stow", actor="test"))


@pytest.fixture
def loaded(context: GatewayContext, small_ct: tuple[SynthStudy, Path], small_mr: tuple[SynthStudy, Path]) -> Loaded:
    ct_files = sorted((small_ct[1] / "dicom").glob("*.dcm"))[:6]
    for path in [*ct_files, *sorted((small_mr[1] / "dicom").glob("*.dcm"))[:4]]:
        ingest(context, path)
    samples = {}
    for name in SAMPLES:
        path = Path(str(get_testdata_file(name)))
        ingest(context, path)
        samples[name] = pydicom.dcmread(path, stop_before_pixels=True)
    return Loaded(small_ct[0], small_mr[0], ct_files, samples)


@pytest.fixture
def client(live_server: str, credentials) -> DICOMwebClient:
    return DICOMwebClient(url=live_server + "/dicomweb", headers=credentials.radiologist)


def value(result: dict, tag: str) -> object:
    return result[tag]["Value"][0]


def uids(results: list[dict], tag: str = "0020000D") -> set[str]:
    return {str(value(r, tag)) for r in results}


def test_search_for_studies_returns_standard_attributes(
    loaded: Loaded, client: DICOMwebClient, live_server: str
) -> None:
    results = client.search_for_studies()
    assert len(results) == 5
    ct = next(r for r in results if value(r, "0020000D") == loaded.ct.header.study_uid)
    for tag in ("00080020", "00080030", "00080050", "00080061", "00080090", "00100010", "00100020", "00100030",
                "00100040", "0020000D", "00200010", "00201206", "00201208", "00081190"):  # fmt: skip
        assert tag in ct, tag
    assert ct["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": loaded.ct.header.patient_name}]}
    assert ct["00080061"] == {"vr": "CS", "Value": ["CT"]}
    assert value(ct, "00100020") == loaded.ct.header.patient_id
    assert value(ct, "00080020") == loaded.ct.header.study_date
    assert value(ct, "00201206") == 1
    assert value(ct, "00201208") == 6
    assert ct["00080090"] == {"vr": "PN"}  # empty in the data: present without a value
    # dicomweb-client sends "Host: 127.0.0.1" without the port, and URLs follow the Host header
    assert str(value(ct, "00081190")).endswith(f"/dicomweb/studies/{loaded.ct.header.study_uid}")
    assert "00081030" not in ct  # StudyDescription is not a default return key
    # newest first, then stable paging in SQL
    dates = [str(value(r, "00080020")) for r in results]
    assert dates == sorted(dates, reverse=True)


def test_study_match_keys(loaded: Loaded, client: DICOMwebClient) -> None:
    ct, mr = loaded.ct.header, loaded.mr.header
    jls = loaded.samples["MR_small_jpeg_ls_lossless.dcm"]
    assert uids(client.search_for_studies(search_filters={"PatientID": ct.patient_id})) == {ct.study_uid}
    assert uids(client.search_for_studies(search_filters={"00100020": mr.patient_id})) == {mr.study_uid}
    both = client.search_for_studies(search_filters={"StudyInstanceUID": f"{ct.study_uid},{jls.StudyInstanceUID}"})
    assert uids(both) == {ct.study_uid, str(jls.StudyInstanceUID)}
    assert uids(client.search_for_studies(search_filters={"AccessionNumber": ct.accession})) == {ct.study_uid}
    by_modality = client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"})
    emri = loaded.samples["emri_small.dcm"]
    assert uids(by_modality) == {mr.study_uid, str(jls.StudyInstanceUID), str(emri.StudyInstanceUID)}
    nm = loaded.samples["JPEG2000.dcm"]
    assert uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "NM"})) == {str(nm.StudyInstanceUID)}
    described = client.search_for_studies(search_filters={"StudyDescription": "CT ABDOMEN*"})
    assert uids(described) == {ct.study_uid}
    assert value(described[0], "00081030") == "CT ABDOMEN WITHOUT CONTRAST"  # match keys are returned
    # an empty value is universal matching: no filter, but the attribute is returned
    assert len(client.search_for_studies(search_filters={"AccessionNumber": ""})) == 5


def test_patient_name_wildcards_and_fuzzy_matching(loaded: Loaded, client: DICOMwebClient) -> None:
    ct, mr = loaded.ct.header, loaded.mr.header
    synthetic = {ct.study_uid, mr.study_uid}
    assert uids(client.search_for_studies(search_filters={"PatientName": "SYNTHETIC^*"})) == synthetic
    assert uids(client.search_for_studies(search_filters={"PatientName": ct.patient_name})) == {ct.study_uid}
    one_char = ct.patient_name[:-1] + "?"
    assert uids(client.search_for_studies(search_filters={"PatientName": one_char})) == {ct.study_uid}
    # without fuzzy matching, names match case-sensitively (on SQLite too)
    assert client.search_for_studies(search_filters={"PatientName": "synthetic^*"}) == []
    assert client.search_for_studies(search_filters={"PatientName": "SYNTHETIC"}) == []
    fuzzy = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "synthetic"})
    assert uids(fuzzy) == synthetic
    prefix = ct.patient_name.split("^")[1][:4].lower()
    fuzzy_given = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": prefix})
    names = {ct.study_uid: ct.patient_name, mr.study_uid: mr.patient_name}
    assert uids(fuzzy_given) == {u for u, n in names.items() if n.split("^")[1].lower().startswith(prefix)}
    # a component must start with the value, not merely contain it
    assert client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "ynthetic"}) == []


def test_study_date_ranges(loaded: Loaded, client: DICOMwebClient) -> None:
    dates = loaded.study_dates()

    def expect(low: str, high: str) -> set[str]:
        return {uid for uid, d in dates.items() if d and (not low or d >= low) and (not high or d <= high)}

    for query, (low, high) in {
        "20040101-20041231": ("20040101", "20041231"),
        "20040826": ("20040826", "20040826"),
        "20040101-": ("20040101", ""),
        "-20031231": ("", "20031231"),
    }.items():
        found = uids(client.search_for_studies(search_filters={"StudyDate": query}))
        assert found == expect(low, high), query
    assert uids(client.search_for_studies(search_filters={"StudyDate": "20040101-20041231"})) == {
        str(loaded.samples["MR_small_jpeg_ls_lossless.dcm"].StudyInstanceUID),
        str(loaded.samples["JPEG2000.dcm"].StudyInstanceUID),
    }


def test_study_time_range_covers_the_precision_of_its_bounds(loaded: Loaded, client: DICOMwebClient) -> None:
    hhmm = loaded.ct.header.study_time[:4]
    assert loaded.ct.header.study_uid in uids(client.search_for_studies(search_filters={"StudyTime": f"{hhmm}-{hhmm}"}))
    assert loaded.ct.header.study_uid in uids(client.search_for_studies(search_filters={"StudyTime": f"-{hhmm}"}))
    earlier = f"{int(hhmm) - 1:04d}" if hhmm != "0000" else None
    if earlier:
        assert loaded.ct.header.study_uid not in uids(
            client.search_for_studies(search_filters={"StudyTime": f"-{earlier}"})
        )


def test_limit_offset_and_includefield(loaded: Loaded, client: DICOMwebClient) -> None:
    everything = [value(r, "0020000D") for r in client.search_for_studies()]
    pages = [client.search_for_studies(limit=2, offset=o) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [value(r, "0020000D") for p in pages for r in p] == everything
    assert client.search_for_studies(offset=5) == []
    assert len(client.search_for_studies(limit=2, get_remaining=True)) == 5

    included = client.search_for_studies(
        fields=["StudyDescription", "00100021"], search_filters={"PatientID": loaded.ct.header.patient_id}
    )
    assert value(included[0], "00081030") == "CT ABDOMEN WITHOUT CONTRAST"
    assert "00100021" in included[0]
    every = client.search_for_studies(fields=["all"], limit=1)
    assert {"00081030", "00100021", "00201206"} <= set(every[0])
    # a real DICOM attribute the index does not hold is not an error, just not returned
    assert "00180050" not in client.search_for_studies(fields=["SliceThickness"], limit=1)[0]


def test_search_for_series(loaded: Loaded, client: DICOMwebClient, live_server: str) -> None:
    ct = loaded.ct.header
    series = client.search_for_series(study_instance_uid=ct.study_uid)
    assert len(series) == 1
    s = series[0]
    assert value(s, "0020000E") == ct.series_uid
    assert value(s, "0020000D") == ct.study_uid
    assert value(s, "00080060") == "CT"
    assert value(s, "00200011") == 2
    assert value(s, "0008103E") == "Axial 3mm"
    assert value(s, "00201209") == 6
    assert str(value(s, "00081190")).endswith(f"/dicomweb/studies/{ct.study_uid}/series/{ct.series_uid}")
    assert "00100020" not in s  # scoped to a study: the study attributes are not repeated
    mr_series = client.search_for_series(search_filters={"Modality": "MR"})
    assert len(mr_series) == 3
    assert all("00100020" in r and "00080020" in r for r in mr_series)  # all-series search adds study attributes
    by_patient = client.search_for_series(search_filters={"PatientID": ct.patient_id, "SeriesNumber": 2})
    assert uids(by_patient, "0020000E") == {ct.series_uid}
    assert client.search_for_series(search_filters={"SeriesNumber": 99}) == []
    assert uids(client.search_for_series(search_filters={"SeriesInstanceUID": ct.series_uid}), "0020000E") == {
        ct.series_uid
    }


def test_search_for_instances(loaded: Loaded, client: DICOMwebClient) -> None:
    ct = loaded.ct.header
    found = client.search_for_instances(study_instance_uid=ct.study_uid, series_instance_uid=ct.series_uid)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in loaded.ct_files]
    assert uids(found, "00080018") == {str(h.SOPInstanceUID) for h in headers}
    numbers = [value(r, "00200013") for r in found]
    assert numbers == sorted(numbers)
    first = found[0]
    assert value(first, "00080016") == "1.2.840.10008.5.1.4.1.1.2"
    assert value(first, "00280010") == 128 and value(first, "00280011") == 128
    assert value(first, "0020000E") == ct.series_uid
    assert "00080060" not in first  # scoped to a series
    third = client.search_for_instances(ct.study_uid, ct.series_uid, search_filters={"InstanceNumber": numbers[2]})
    assert [value(r, "00200013") for r in third] == [numbers[2]]
    in_study = client.search_for_instances(study_instance_uid=ct.study_uid, limit=2, offset=1)
    assert [value(r, "00200013") for r in in_study] == numbers[1:3]
    assert value(in_study[0], "00080060") == "CT"  # study-scoped: series attributes included

    emri = loaded.samples["emri_small.dcm"]
    multi = client.search_for_instances(search_filters={"SOPInstanceUID": str(emri.SOPInstanceUID)})
    assert len(multi) == 1
    assert value(multi[0], "00280008") == 10
    assert value(multi[0], "00080020") == "20000101"  # all-instances search adds study attributes
    by_class = client.search_for_instances(
        search_filters={"SOPClassUID": str(loaded.samples["JPEG2000.dcm"].SOPClassUID)}
    )
    assert uids(by_class, "00080018") == {str(loaded.samples["JPEG2000.dcm"].SOPInstanceUID)}
    by_patient = client.search_for_instances(search_filters={"PatientID": ct.patient_id})
    assert len(by_patient) == 6


def test_results_beyond_the_server_maximum_carry_a_warning(
    context: GatewayContext, live_server: str, credentials
) -> None:
    with context.db.write() as session:
        patient = Patient(patient_id="P-MANY", patient_name="MANY^STUDIES")
        session.add(patient)
        session.flush()
        session.add_all(
            Study(study_uid=f"1.2.826.0.1.{n}", patient_fk=patient.id, study_date="20240101") for n in range(1001)
        )
    with httpx.Client(base_url=live_server + "/dicomweb", headers=credentials.radiologist) as http:
        capped = http.get("/studies")
        assert len(capped.json()) == 1000
        assert capped.headers["warning"].startswith("299 ")
        asked = http.get("/studies", params={"limit": 10, "offset": 995})
        assert len(asked.json()) == 6
        assert "warning" not in asked.headers  # the client chose the page size: no warning
        assert len(http.get("/studies", params={"limit": 5000, "offset": 1}).json()) == 1000


def test_invalid_queries_are_refused(loaded: Loaded, live_server: str, credentials) -> None:
    base = live_server + "/dicomweb"
    with httpx.Client(base_url=base, headers=credentials.radiologist) as http:
        for path, params in [
            ("/studies", {"NoSuchKey": "x"}),
            ("/studies", {"00100020.00100010": "x"}),
            ("/studies", {"SliceThickness": "1"}),  # a DICOM attribute the index cannot match
            ("/studies", {"Modality": "CT"}),  # a series attribute in a study search
            ("/studies", {"StudyDate": "2004-01-01"}),
            ("/studies", {"StudyDate": "-"}),
            ("/studies", {"limit": "many"}),
            ("/studies", {"limit": "0"}),
            ("/studies", {"offset": "-1"}),
            ("/studies", {"fuzzymatching": "maybe"}),
            ("/studies", {"includefield": "NotAnAttribute"}),
            ("/series", {"SeriesNumber": "two"}),
            ("/instances", {"InstanceNumber": "1.5"}),
        ]:
            resp = http.get(path, params=params)
            assert resp.status_code == 400, (path, params, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == "invalid_input"
        missing = http.get("/studies/1.2.3.4/series")
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
        assert http.get(f"/studies/{loaded.ct.header.study_uid}/series/1.2.3/instances").status_code == 404
        listed = http.get("/studies", params={"PatientID": loaded.ct.header.patient_id}).json()
        assert value(listed[0], "00081190") == f"{base}/studies/{loaded.ct.header.study_uid}"
        empty = http.get("/studies", params={"PatientID": "nobody"})
        assert empty.status_code == 200
        assert empty.json() == []
        assert empty.headers["content-type"] == "application/dicom+json"
        # LIKE metacharacters in a value are literal, not wildcards
        assert http.get("/studies", params={"PatientID": "%"}).json() == []
        assert http.get("/studies", params={"PatientID": "*%*"}).json() == []
        assert http.get("/studies", params={"AccessionNumber": "A___*"}).json() == []
        found = http.get("/studies", params={"AccessionNumber": "A?????????"}).json()
        assert uids(found) == {loaded.ct.header.study_uid, loaded.mr.header.study_uid}


def test_authentication_and_permission(loaded: Loaded, live_server: str, credentials) -> None:
    url = live_server + "/dicomweb"
    with pytest.raises(HTTPError) as unauthenticated:
        DICOMwebClient(url=url).search_for_studies()
    assert unauthenticated.value.response.status_code == 401
    with pytest.raises(HTTPError) as forbidden:
        DICOMwebClient(url=url, headers=credentials.site).search_for_series()
    assert forbidden.value.response.status_code == 403
    assert DICOMwebClient(url=url, headers=credentials.technologist).search_for_instances(limit=1)


def test_every_search_is_audited_without_patient_names(
    loaded: Loaded, context: GatewayContext, client: DICOMwebClient, live_server: str, credentials
) -> None:
    ct = loaded.ct.header
    client.search_for_studies(search_filters={"PatientName": ct.patient_name, "StudyDate": "19000101-"})
    client.search_for_series(study_instance_uid=ct.study_uid)
    client.search_for_instances(ct.study_uid, ct.series_uid)
    httpx.get(f"{live_server}/dicomweb/studies/1.2.3/series", headers=credentials.radiologist)
    with context.db.read() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dicom.search").order_by(AuditEvent.id)
        ).all()
    assert [(r.resource_type, r.resource_uid, r.outcome) for r in rows] == [
        ("study", "", "ok"),
        ("series", ct.study_uid, "ok"),
        ("instance", ct.series_uid, "ok"),
        ("series", "1.2.3", "not_found"),
    ]
    assert all(r.actor == "rad" and r.role == "radiologist" for r in rows)
    assert rows[0].detail["keys"] == ["PatientName", "StudyDate"]
    assert rows[0].detail["count"] == 1
    assert rows[2].detail["count"] == 6
    dumped = json.dumps([r.detail for r in rows])
    assert ct.patient_name not in dumped and "SYNTHETIC" not in dumped
