"""The draft report as a DICOM Comprehensive 3D SR, TID 1500 Measurement Report (highdicom).

Content tree, in TID 1500 order:

* observer context: one DEVICE observer, the reasoning model (Device Observer Name and Model
  Name = the model's name; manufacturer MedGate; serial = start of the weights' sha256);
* procedure reported (CT, MR or imaging procedure) and an image library of the source images;
* imaging measurements, one group per item a statement may cite:
  - per lesion a TID 1411 volumetric group: Referenced Segment (the SEG's segment with the
    lesion's number, as the seg service numbers them), finding category/type SNOMED
    *Morphologically abnormal structure* / *Lesion*, finding site from the host organ when the
    segmentation names one (else when a grounded answer about the lesion names it: then the
    finding site is INFERRED FROM that answer's group, by the same Tracking Identifier and
    UID pair the statements cite with, since the group's algorithm, the seg model, did not
    name it), the volume in UCUM ``ml``, and as Algorithm Identification the
    model that found the lesion (name and version, read from the SEG segment: the lesion
    and its volume are the seg model's work, not the reasoning model's). Its Tracking
    Identifier is ``lesion k`` and its
    Tracking UID *is the SEG segment's Tracking UID*, so the SR group and the SEG segment are
    one tracked finding for any viewer;
  - a TID 1501 "lesion search" group (the seg model's): Presence of property = Present or
    Absent, so that a study without lesions still has a coded answer (and a group: TID 1500
    needs one);
  - per VQA answer a TID 1501 group (the reasoning model's) with question, answer and
    rationale as TEXT;
  - when given, a "quality report" group (the quality gate's verdict and reasoning as TEXT)
    and a "triage score" group (the score as a NUM, the class as TEXT), each credited to the
    model that made it, so that a statement resting on them can cite them;
* qualitative evaluations (TID 1500's own container): one TEXT item per statement, named
  Finding (DCM 121071) or Impression (DCM 121073).

Evidence, and why this way: each statement TEXT item has, per cited item, two INFERRED FROM
children, a TEXT *Tracking Identifier* ("lesion 2 volume") and a UIDREF *Tracking Unique
Identifier* (the cited group's tracking UID). Tracking UIDs are DICOM's own way to say "this
finding"; they survive copying of the SR, they reach into the SEG (same UID), and every SR
reader can follow them, where by-reference relationships (Referenced Content Item Identifier)
break as soon as a tool rewrites the tree and highdicom cannot build them. A measurement
citation points at its lesion's group; the label names the quantity.

AI-generated: a device observer, Algorithm Identification in the groups, Manufacturer /
Manufacturer Model Name / Software Versions (model name and version), series description
"AI draft report ... not reviewed", Preliminary Flag PRELIMINARY and Verification Flag
UNVERIFIED until a radiologist signs, Content Qualification RESEARCH (synthetic training data).

VQA text uses a private coding scheme (``99MEDGATE``, declared in the Coding Scheme
Identification Sequence only when answers are written): DICOM has no concept for "question
asked of a model", and dciodvfy warns about any designator it does not know.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from medgate_common.errors import InputError
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityReport
from medgate_common.schemas.reasoning import GroundedAnswer, TriageScore
from medgate_common.schemas.segmentation import Lesion
from medgate_vlm.core.evidence import (
    EvidenceError,
    EvidenceKind,
    EvidenceRef,
    LesionSite,
    ReportStatement,
    Section,
    check_evidence,
)

MANUFACTURER = "MedGate"
SERIES_NUMBER = 9102
SERIES_DESCRIPTION = "AI draft report (MedGate, AI-generated, not reviewed)"
NO_LESION_TEXT = "No lesion found."

ML = Code("ml", "UCUM", "milliliter")
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")
MRI = Code("113091000", "SCT", "Magnetic resonance imaging")
QUESTION = Code("vqa-question", "99MEDGATE", "Question asked of the model")
ANSWER = Code("vqa-answer", "99MEDGATE", "Answer of the model")
RATIONALE = Code("vqa-rationale", "99MEDGATE", "Rationale of the model")
QUALITY_VERDICT = Code("iqa-verdict", "99MEDGATE", "Image quality verdict")
QUALITY_REASONING = Code("iqa-reasoning", "99MEDGATE", "Image quality reasoning")
TRIAGE_SCORE = Code("triage-score", "99MEDGATE", "Probability that the study is abnormal")
TRIAGE_LABEL = Code("triage-label", "99MEDGATE", "Most likely triage class")
NO_UNITS = Code("1", "UCUM", "no units")
SECTION_CONCEPT = {Section.FINDINGS: codes.DCM.Finding, Section.IMPRESSION: codes.DCM.Impression}

#: Host organs as the segmentation names them (the synthetic anatomy's tissue names) → SNOMED.
ORGAN_SITES: dict[str, Code] = {
    "liver": codes.SCT.Liver,
    "spleen": codes.SCT.Spleen,
    "kidney": codes.SCT.Kidney,
    "lung": codes.SCT.Lung,
    "brain": codes.SCT.Brain,
    "white_matter": codes.SCT.CerebralWhiteMatter,
    "grey_matter": codes.SCT.GrayMatter,
}


#: The grounded VQA model's location answers → the organ as :data:`ORGAN_SITES` spells it.
@dataclass(frozen=True)
class WrittenStatement:
    """A statement as read back from an SR: its cited items by label and tracking UID."""

    section: Section
    text: str
    labels: tuple[str, ...]
    tracking_uids: tuple[str, ...]


def _private_scheme() -> CodingSchemeIdentificationItem:
    return CodingSchemeIdentificationItem(
        designator="99MEDGATE", name="MedGate reasoning concepts", responsible_organization=MANUFACTURER
    )


def _segments(seg: Dataset) -> dict[int, Dataset]:
    return {int(item.SegmentNumber): item for item in seg.SegmentSequence}


def _check_seg(source: Sequence[Dataset], seg: Dataset | None, lesions: Sequence[Lesion]) -> None:
    if not lesions:
        return
    if seg is None:
        raise EvidenceError(f"{len(lesions)} lesion(s) but no SEG to reference")
    if seg.StudyInstanceUID != source[0].StudyInstanceUID:
        raise EvidenceError("the SEG belongs to another study than the source images")
    referenced = {str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])}
    if str(source[0].SeriesInstanceUID) not in referenced:
        raise EvidenceError("the SEG was not made from the source series")
    numbers = _segments(seg)
    for lesion in lesions:
        if lesion.lesion_id not in numbers:
            raise EvidenceError(
                f"lesion {lesion.lesion_id} has no segment in the SEG (segments {sorted(numbers)})",
                lesion_id=lesion.lesion_id,
            )


def _procedure(modality: str) -> Code:
    procedures: dict[str, Code] = {"CT": codes.SCT.ComputedTomography, "MR": MRI}
    fallback: Code = codes.SCT.ImagingProcedure
    return procedures.get(modality, fallback)


def _observer(model: ModelInfo) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=str(generate_uid(entropy_srcs=["medgate-device", model.name, model.version, model.sha256])),
        name=model.name,
        manufacturer_name=MANUFACTURER,
        model_name=model.name,
        serial_number=model.sha256[:16],
    )
    return hd.sr.ObservationContext(
        observer_person_context=None,
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        ),
    )


def _seg_algorithm(segment: Dataset) -> hd.sr.AlgorithmIdentification | None:
    """The model that found a lesion, as its SEG segment names it."""
    for item in segment.get("SegmentationAlgorithmIdentificationSequence", []):
        if item.get("AlgorithmName") and item.get("AlgorithmVersion"):
            return hd.sr.AlgorithmIdentification(name=str(item.AlgorithmName), version=str(item.AlgorithmVersion))
    return None


def _cites(ref: EvidenceRef, uid: str) -> list[hd.sr.ContentItem]:
    """The INFERRED FROM pair that cites a tracked item: its Tracking Identifier and Tracking UID."""
    inferred = hd.sr.RelationshipTypeValues.INFERRED_FROM
    return [
        hd.sr.TextContentItem(codes.DCM.TrackingIdentifier, ref.label, inferred),
        hd.sr.UIDRefContentItem(codes.DCM.TrackingUniqueIdentifier, uid, inferred),
    ]


def _finding_site(lesion: Lesion, site: LesionSite | None, uids: dict[EvidenceRef, str]) -> hd.sr.FindingSite | None:
    """The segmentation's organ, else the one a grounded answer names, INFERRED FROM that answer."""
    if lesion.organ:
        code = ORGAN_SITES.get(lesion.organ.lower())
        return hd.sr.FindingSite(code) if code is not None else None
    if site is None:
        return None
    code = ORGAN_SITES.get(site.organ.lower())
    if code is None:
        raise EvidenceError(f"lesion {lesion.lesion_id}'s site {site.organ!r} has no code", known=sorted(ORGAN_SITES))
    item = hd.sr.FindingSite(code)
    item.ContentSequence = hd.sr.ContentSequence(_cites(site.evidence, uids[site.evidence]))
    return item


def _lesion_group(
    lesion: Lesion, seg: Dataset, sop_uid: str, site: hd.sr.FindingSite | None
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    segment = _segments(seg)[lesion.lesion_id]
    algorithm = _seg_algorithm(segment)
    uid = str(segment.get("TrackingUID") or generate_uid(entropy_srcs=[sop_uid, "lesion", str(lesion.lesion_id)]))
    volume = hd.sr.Measurement(name=codes.SCT.Volume, value=lesion.volume_ml, unit=ML)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier=EvidenceRef.lesion(lesion.lesion_id).label),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number=lesion.lesion_id),
        finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_type=codes.SCT.Lesion,
        finding_sites=[site] if site is not None else None,
        algorithm_id=algorithm,
        measurements=[volume],
    )


def _search_group(
    found: bool, algorithm: hd.sr.AlgorithmIdentification | None, uid: str
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    presence = hd.sr.QualitativeEvaluation(
        name=codes.DCM.PresenceOfProperty, value=codes.SCT.Present if found else codes.SCT.Absent
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier=EvidenceRef.lesion_search().label),
        finding_type=codes.SCT.Lesion,
        algorithm_id=algorithm,
        qualitative_evaluations=[presence],
    )


def _answer_group(
    number: int, answer: GroundedAnswer, algorithm: hd.sr.AlgorithmIdentification, uid: str
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier=EvidenceRef.answer(number).label),
        algorithm_id=algorithm,
    )
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    for name, value in ((QUESTION, answer.question), (ANSWER, answer.answer), (RATIONALE, answer.rationale)):
        if value.strip():
            group[0].ContentSequence.append(hd.sr.TextContentItem(name=name, value=value, relationship_type=contains))
    return group


def _text_group(
    label: str, texts: Sequence[tuple[Code, str]], model: ModelInfo, uid: str, measurement: hd.sr.Measurement | None
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A TID 1501 group of another model's result (quality gate, triage), credited to it."""
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier=label),
        algorithm_id=hd.sr.AlgorithmIdentification(name=model.name, version=model.version),
        measurements=[measurement] if measurement is not None else None,
    )
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    for name, value in texts:
        if value.strip():
            group[0].ContentSequence.append(hd.sr.TextContentItem(name=name, value=value, relationship_type=contains))
    return group


def _statement_item(statement: ReportStatement, uids: dict[EvidenceRef, str]) -> hd.sr.TextContentItem:
    item = hd.sr.TextContentItem(
        name=SECTION_CONCEPT[statement.section],
        value=statement.text,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    children: list[hd.sr.ContentItem] = []
    for ref in statement.evidence:
        target = EvidenceRef.lesion(ref.number) if ref.kind is EvidenceKind.MEASUREMENT else ref
        children += _cites(ref, uids[target])
    item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def build_sr(
    source: Sequence[Dataset],
    seg: Dataset | None,
    lesions: Sequence[Lesion],
    statements: Sequence[ReportStatement],
    model: ModelInfo,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    answers: Sequence[GroundedAnswer] = (),
    segmentation_model: ModelInfo | None = None,
    instance_number: int = 1,
    quality: QualityReport | None = None,
    triage: TriageScore | None = None,
    sites: Sequence[LesionSite] = (),
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 SR of a draft report on ``source`` (the instances of one series).

    ``seg`` is the seg service's SEG of that series (``None`` when no lesion was found); lesion
    ``k`` is its segment ``k``. ``answers`` are the VQA answers statements cite by position.
    ``model`` is the reasoning model (the observer); lesion groups name the model that found
    them as the SEG does, or ``segmentation_model`` when there is no SEG. Without lesions and
    statements, the report says :data:`NO_LESION_TEXT`. ``quality`` (the gate's report on the
    series) and ``triage`` (the study's score) become groups of their own, credited to the
    models that made them, so that statements can cite them. ``sites`` are the organs
    grounded answers name for lesions the segmentation names none of: finding sites
    inferred from those answers.
    """
    if not source:
        raise InputError("a report needs the source images it describes")
    _check_seg(source, seg, lesions)
    check_evidence(statements, lesions, answers, quality=quality is not None, triage=triage is not None, sites=sites)
    if not statements and not lesions:
        statements = [ReportStatement(NO_LESION_TEXT, (EvidenceRef.lesion_search(),))]
    algorithm = hd.sr.AlgorithmIdentification(name=model.name, version=model.version)
    if seg is not None:
        searcher = _seg_algorithm(seg.SegmentSequence[0])
    elif segmentation_model is not None:
        searcher = hd.sr.AlgorithmIdentification(name=segmentation_model.name, version=segmentation_model.version)
    else:
        searcher = None

    uids: dict[EvidenceRef, str] = {}
    groups: list[
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = []
    for number in range(1, len(answers) + 1):
        uids[EvidenceRef.answer(number)] = str(generate_uid(entropy_srcs=[sop_instance_uid, "answer", str(number)]))
    site_of = {site.lesion_id: site for site in sites}
    for lesion in lesions:
        assert seg is not None  # _check_seg
        site = _finding_site(lesion, site_of.get(lesion.lesion_id), uids)
        group = _lesion_group(lesion, seg, sop_instance_uid, site)
        uids[EvidenceRef.lesion(lesion.lesion_id)] = str(group.tracking_uid)
        groups.append(group)
    search_uid = str(generate_uid(entropy_srcs=[sop_instance_uid, "lesion search"]))
    uids[EvidenceRef.lesion_search()] = search_uid
    groups.append(_search_group(bool(lesions), searcher, search_uid))
    for number, answer in enumerate(answers, start=1):
        groups.append(_answer_group(number, answer, algorithm, uids[EvidenceRef.answer(number)]))
    if quality is not None:
        ref = EvidenceRef.quality()
        uids[ref] = str(generate_uid(entropy_srcs=[sop_instance_uid, ref.label]))
        texts = ((QUALITY_VERDICT, quality.verdict.value), (QUALITY_REASONING, quality.reasoning))
        groups.append(_text_group(ref.label, texts, quality.model, uids[ref], None))
    if triage is not None:
        ref = EvidenceRef.triage()
        uids[ref] = str(generate_uid(entropy_srcs=[sop_instance_uid, ref.label]))
        score = hd.sr.Measurement(name=TRIAGE_SCORE, value=triage.score, unit=NO_UNITS)
        groups.append(_text_group(ref.label, ((TRIAGE_LABEL, triage.label),), triage.model, uids[ref], score))

    report = hd.sr.MeasurementReport(
        observation_context=_observer(model),
        procedure_reported=_procedure(str(source[0].Modality)),
        imaging_measurements=groups,
        referenced_images=list(source),
    )
    evaluations = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    evaluations.ContentSequence = hd.sr.ContentSequence([_statement_item(s, uids) for s in statements])
    report[0].ContentSequence.append(evaluations)

    return hd.sr.Comprehensive3DSR(
        evidence=[*source, *([seg] if seg is not None else [])],
        content=report[0],
        series_instance_uid=series_instance_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=SERIES_DESCRIPTION,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=model.sha256[:16],
        content_qualification=hd.ContentQualificationValues.RESEARCH,
        coding_schemes=[_private_scheme()] if answers or quality is not None or triage is not None else None,
    )


def written_statements(sr: Dataset) -> list[WrittenStatement]:
    """The statements of an SR written by :func:`build_sr`, with the items they cite."""
    by_code = {(c.value, c.scheme_designator): section for section, c in SECTION_CONCEPT.items()}
    found: list[WrittenStatement] = []
    for item in sr.ContentSequence:
        concept = item.ConceptNameCodeSequence[0]
        if (concept.CodeValue, concept.CodingSchemeDesignator) != (QUALITATIVE_EVALUATIONS.value, "UMLS"):
            continue
        for statement in item.get("ContentSequence", []):
            name = statement.ConceptNameCodeSequence[0]
            children = statement.get("ContentSequence", [])
            found.append(
                WrittenStatement(
                    section=by_code[(name.CodeValue, name.CodingSchemeDesignator)],
                    text=str(statement.TextValue),
                    labels=tuple(str(c.TextValue) for c in children if c.ValueType == "TEXT"),
                    tracking_uids=tuple(str(c.UID) for c in children if c.ValueType == "UIDREF"),
                )
            )
    return found


def sr_bytes(sr: hd.sr.Comprehensive3DSR) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
