"""The draft report's SR: valid for dciodvfy, read back by highdicom to the lesion list, the
SEG's segments and the device observer it was written from, every statement pointing at
the tracked items it rests on; no lesion still makes a valid report, and evidence that is
not there is refused before anything is written."""

from __future__ import annotations

import copy
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage, generate_uid
from shared_fixtures import dciodvfy
from vlm_fixtures import SEG_MODEL, VLM_MODEL, SegmentedStudy

from medgate_common.errors import InputError
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_vlm.core.dicom_sr import NO_LESION_TEXT, build_sr, sr_bytes, written_statements
from medgate_vlm.core.evidence import EvidenceError, EvidenceRef, ReportStatement, Section

pytestmark = pytest.mark.integration

#: The one warning we accept: DICOM knows no concept for "question asked of a model", so VQA
#: text is coded in a private scheme (declared in the Coding Scheme Identification Sequence).
PRIVATE_SCHEME_WARNING = (
    "Warning - Unrecognized defined term <99MEDGATE> for value 1 of attribute <Coding Scheme Designator>"
)
ANSWERS = (
    GroundedAnswer(
        question="Is there a focal liver lesion?", answer="yes", rationale="hypodense focus", confidence=0.9
    ),
)
SITES = {"liver": "10200004", "spleen": "78961009", "kidney": "64033007"}


def draft(study: SegmentedStudy) -> list[ReportStatement]:
    findings = [
        ReportStatement(
            f"Lesion {lesion.lesion_id} in the {lesion.organ}, {lesion.volume_ml:.2f} mL.",
            (EvidenceRef.lesion(lesion.lesion_id), EvidenceRef.volume_of(lesion.lesion_id)),
        )
        for lesion in study.lesions
    ]
    impression = ReportStatement(
        f"{len(study.lesions)} focal lesions.", (EvidenceRef.lesion_search(), EvidenceRef.answer(1)), Section.IMPRESSION
    )
    return [*findings, impression]


def write(sr: hd.sr.Comprehensive3DSR, path: Path) -> Path:
    path.write_bytes(sr_bytes(sr))
    return path


def images_in(item: pydicom.Dataset) -> list[str]:
    """SOP Instance UIDs of every IMAGE content item under ``item``."""
    found = [str(ref.ReferencedSOPInstanceUID) for ref in item.get("ReferencedSOPSequence", [])]
    for child in item.get("ContentSequence", []):
        found += images_in(child)
    return found


def algorithm_of(group: pydicom.Dataset) -> tuple[str, str] | None:
    """(name, version) of a measurement group's Algorithm Identification, if any."""
    found = {
        c.ConceptNameCodeSequence[0].CodeValue: str(c.TextValue)
        for c in group[0].ContentSequence
        if c.ValueType == "TEXT"
    }
    return (found["111001"], found["111003"]) if "111001" in found else None


def uids() -> dict[str, str]:
    return {"series_instance_uid": str(generate_uid()), "sop_instance_uid": str(generate_uid())}


def test_the_report_of_a_segmented_ct_is_valid_and_reads_back_to_its_evidence(
    segmented: SegmentedStudy, tmp_path: Path
) -> None:
    statements = draft(segmented)
    sr = build_sr(
        segmented.source.datasets, segmented.seg, segmented.lesions, statements, VLM_MODEL, answers=ANSWERS, **uids()
    )
    path = write(sr, tmp_path / "sr.dcm")
    assert set(dciodvfy(path)) <= {PRIVATE_SCHEME_WARNING}

    back = hd.sr.srread(path)
    source, seg = segmented.source.datasets[0], segmented.seg
    assert back.SOPClassUID == Comprehensive3DSRStorage
    assert (back.PatientID, back.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    assert (back.VerificationFlag, back.PreliminaryFlag) == ("UNVERIFIED", "PRELIMINARY")
    assert "AI" in back.SeriesDescription and back.ManufacturerModelName == VLM_MODEL.name
    assert back.SoftwareVersions == VLM_MODEL.version
    evidence = {
        item.ReferencedSOPInstanceUID
        for series in back.CurrentRequestedProcedureEvidenceSequence
        for ref in series.ReferencedSeriesSequence
        for item in ref.ReferencedSOPSequence
    }
    assert evidence == {*segmented.source.volume.sop_instance_uids, seg.SOPInstanceUID}

    report = hd.sr.MeasurementReport.from_sequence(back.content)
    [observer] = report.get_observer_contexts(observer_type=codes.DCM.Device)
    assert observer.observer_identifying_attributes.name == VLM_MODEL.name
    assert observer.observer_identifying_attributes.model_name == VLM_MODEL.name
    assert not report.get_observer_contexts(observer_type=codes.DCM.Person)

    segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    groups = report.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f"lesion {lesion.lesion_id}" for lesion in segmented.lesions]
    group_uids = {}
    for group, lesion in zip(groups, segmented.lesions, strict=True):
        [volume] = group.get_measurements(name=codes.SCT.Volume)
        assert round(volume.value, 4) == lesion.volume_ml
        assert volume.unit.value == "ml" and volume.unit.scheme_designator == "UCUM"
        reference = group.referenced_segment[0].ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert reference.ReferencedSegmentNumber == lesion.lesion_id
        # the SR group and the SEG segment are one tracked finding
        assert group.tracking_uid == segments[lesion.lesion_id].TrackingUID
        assert group.finding_type.value == "52988006"
        # the lesion and its volume are the seg model's work, as the SEG says
        assert algorithm_of(group) == (SEG_MODEL.name, SEG_MODEL.version)
        assert [site.value.value for site in group.finding_sites] == [SITES[str(lesion.organ)]]
        group_uids[f"lesion {lesion.lesion_id}"] = str(group.tracking_uid)
    search, answer = report.get_image_measurement_groups()
    assert algorithm_of(search) == (SEG_MODEL.name, SEG_MODEL.version)
    assert algorithm_of(answer) == (VLM_MODEL.name, VLM_MODEL.version)
    assert [(c.ConceptNameCodeSequence[0].CodeValue, c.TextValue) for c in answer[0].ContentSequence[-3:]] == [
        ("vqa-question", ANSWERS[0].question),
        ("vqa-answer", ANSWERS[0].answer),
        ("vqa-rationale", ANSWERS[0].rationale),
    ]
    by_label = {
        str(g.tracking_identifier): str(g.tracking_uid) for g in report.get_image_measurement_groups()
    } | group_uids

    written = written_statements(back)
    assert [(w.section, w.text) for w in written] == [(s.section, s.text) for s in statements]
    for statement, read in zip(statements, written, strict=True):
        assert read.labels == tuple(ref.label for ref in statement.evidence)
        cited = [label.removesuffix(" volume") for label in read.labels]
        assert read.tracking_uids == tuple(by_label[label] for label in cited)


def test_no_lesion_still_makes_a_report_with_its_observer_and_source_images(
    segmented: SegmentedStudy, tmp_path: Path
) -> None:
    sr = build_sr(segmented.source.datasets, None, [], [], VLM_MODEL, **uids())
    path = write(sr, tmp_path / "empty.dcm")
    assert dciodvfy(path) == []

    back = hd.sr.srread(path)
    report = hd.sr.MeasurementReport.from_sequence(back.content)
    assert report.get_volumetric_roi_measurement_groups() == []
    [search] = report.get_image_measurement_groups()
    assert search.tracking_identifier == "lesion search"
    assert algorithm_of(search) is None  # no SEG and no segmentation model named: nobody to credit
    named = build_sr(segmented.source.datasets, None, [], [], VLM_MODEL, segmentation_model=SEG_MODEL, **uids())
    [search_named] = hd.sr.MeasurementReport.from_sequence(named.content).get_image_measurement_groups()
    assert algorithm_of(search_named) == (SEG_MODEL.name, SEG_MODEL.version)
    [presence] = search.get_qualitative_evaluations(name=codes.DCM.PresenceOfProperty)
    assert presence.value == codes.SCT.Absent
    [observer] = report.get_observer_contexts(observer_type=codes.DCM.Device)
    assert observer.observer_identifying_attributes.name == VLM_MODEL.name
    [statement] = written_statements(back)
    assert (statement.text, statement.labels, statement.tracking_uids) == (
        NO_LESION_TEXT,
        ("lesion search",),
        (str(search.tracking_uid),),
    )
    [library] = [c for c in back.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "111028"]
    assert set(images_in(library)) == set(segmented.source.volume.sop_instance_uids)


def test_a_lesion_without_its_segment_in_the_seg_is_refused(segmented: SegmentedStudy) -> None:
    extra = segmented.lesions[0].model_copy(update={"lesion_id": 99})
    with pytest.raises(EvidenceError, match="lesion 99 has no segment") as caught:
        build_sr(segmented.source.datasets, segmented.seg, [*segmented.lesions, extra], [], VLM_MODEL, **uids())
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InputError)
    assert caught.value.code == "unresolved_evidence"
    with pytest.raises(EvidenceError, match="no SEG"):
        build_sr(segmented.source.datasets, None, segmented.lesions, [], VLM_MODEL, **uids())


def test_a_seg_of_another_series_is_refused(segmented: SegmentedStudy) -> None:
    other = copy.deepcopy(segmented.seg)
    other.ReferencedSeriesSequence = [pydicom.Dataset()]
    other.ReferencedSeriesSequence[0].SeriesInstanceUID = str(generate_uid())
    with pytest.raises(EvidenceError, match="source series"):
        build_sr(segmented.source.datasets, other, segmented.lesions, [], VLM_MODEL, **uids())


def test_statements_must_cite_evidence_that_exists(segmented: SegmentedStudy) -> None:
    with pytest.raises(EvidenceError, match="at least one"):
        ReportStatement("Unsupported claim.", ())
    cases = [
        (EvidenceRef.lesion(42), "lesion 42"),
        (EvidenceRef.volume_of(42), "lesion 42 volume"),
        (EvidenceRef.answer(2), "answer 2"),
    ]
    for ref, label in cases:
        with pytest.raises(EvidenceError, match=label):
            build_sr(
                segmented.source.datasets,
                segmented.seg,
                segmented.lesions,
                [ReportStatement("Claim.", (ref,))],
                VLM_MODEL,
                answers=ANSWERS,
                **uids(),
            )
    with pytest.raises(InputError, match="source images"):
        build_sr([], None, [], [], VLM_MODEL, **uids())
