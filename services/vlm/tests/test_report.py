"""The unified output: every sentence of the draft cites what it rests on, the findings name each
lesion's volume and organ, a study without lesions says so, a rejected study or a series without
segmentation result is refused; the SR written from it carries every citation (quality report
and triage score included, each credited to its own model) and one key image per lesion plus
one per grounded answer, all valid for dciodvfy."""

from __future__ import annotations

import io
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from shared_fixtures import dciodvfy
from vlm_fixtures import SEG_MODEL, VLM_MODEL, SegmentedStudy
from vlm_service_fixtures import IQA_MODEL, quality

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import Verdict
from medgate_common.schemas.reasoning import GroundedAnswer, TriageScore
from medgate_vlm.core.dicom_sr import written_statements
from medgate_vlm.core.evidence import EvidenceKind, Section
from medgate_vlm.core.report import Grounding, Uids, answered, build_outputs, compose
from medgate_vlm.core.study import MissingSegmentationError, QualityRejectedError, read_series
from medgate_vlm.core.vqa import CANNOT_ANSWER

pytestmark = pytest.mark.integration

TRIAGE_MODEL = ModelInfo(name="medgate-fl-triage", version="r3", sha256="12" * 32, backend="onnxruntime")
TRIAGE = TriageScore(score=0.83, label="hypodense", model=TRIAGE_MODEL)
ANSWERS = (
    GroundedAnswer(question="Is there a lesion?", answer="yes", rationale="<rationale>r</rationale>", confidence=0.9),
    GroundedAnswer(question="Any fracture?", answer=CANNOT_ANSWER, rationale="<rationale>n</rationale>", confidence=0),
    GroundedAnswer(question="Where is it?", answer="liver", rationale="<rationale>l</rationale>", confidence=0.7),
)
PRIVATE_SCHEME_WARNING = (
    "Warning - Unrecognized defined term <99MEDGATE> for value 1 of attribute <Coding Scheme Designator>"
)
EXTENDED_SOP_CLASS = {
    "Warning - Attribute is not present in standard DICOM IOD - (0x0020,0x0052) UI Frame of Reference UID ",
    "Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class",
}


def test_every_sentence_cites_its_evidence_and_the_findings_name_volume_and_organ(segmented: SegmentedStudy) -> None:
    report = quality(segmented).series[0]
    cited = answered(ANSWERS)
    assert [a.answer for a in cited] == ["yes", "liver"]  # "cannot answer" is never made a sentence
    statements = compose(report, segmented.lesions, cited, TRIAGE)
    assert all(s.evidence for s in statements)
    kinds = {ref.kind for s in statements for ref in s.evidence}
    assert kinds == set(EvidenceKind)
    findings = [s for s in statements if s.section is Section.FINDINGS]
    for lesion in segmented.lesions:
        [sentence] = [s for s in findings if s.text.startswith(f"Lesion {lesion.lesion_id} ")]
        assert f"{lesion.volume_ml:.2f} mL" in sentence.text and str(lesion.organ) in sentence.text
        assert {r.label for r in sentence.evidence} == {
            f"lesion {lesion.lesion_id}",
            f"lesion {lesion.lesion_id} volume",
        }
    [about_answer] = [s for s in findings if "liver" in s.text and "answered" in s.text]
    assert [r.label for r in about_answer.evidence] == ["answer 2"]
    impression = [s for s in statements if s.section is Section.IMPRESSION]
    largest = max(segmented.lesions, key=lambda lesion: lesion.volume_ml)
    assert f"{len(segmented.lesions)} focal lesions" in impression[0].text
    assert f"lesion {largest.lesion_id}" in impression[0].text
    assert "0.83" in impression[-1].text and [r.label for r in impression[-1].evidence] == ["triage score"]
    assert "Image quality good" in findings[0].text and [r.label for r in findings[0].evidence] == ["quality report"]


def test_no_lesion_says_so_and_an_unknown_triage_or_gate_is_not_mentioned(segmented: SegmentedStudy) -> None:
    statements = compose(None, [], [], None)
    assert [(s.section, s.text) for s in statements] == [
        (Section.FINDINGS, "No focal lesion was found."),
        (Section.IMPRESSION, "No focal lesion."),
    ]
    assert all([r.label for r in s.evidence] == ["lesion search"] for s in statements)
    usable = compose(quality(segmented, Verdict.usable).series[0], [], [], None)
    assert any("usable" in s.text and s.section is Section.IMPRESSION for s in usable)


def test_a_rejected_series_or_a_missing_segmentation_result_is_refused(segmented: SegmentedStudy) -> None:
    with pytest.raises(QualityRejectedError, match="rejected") as caught:
        compose(quality(segmented, Verdict.reject).series[0], segmented.lesions, [], None)
    assert caught.value.code == "quality_rejected" and caught.value.http_status == 422
    with pytest.raises(MissingSegmentationError, match="segmentation result") as missing:
        compose(quality(segmented).series[0], None, [], None)
    assert missing.value.code == "missing_segmentation"


def test_the_outputs_are_an_sr_citing_everything_and_key_images_per_lesion_and_heatmap(
    segmented: SegmentedStudy, tmp_path: Path
) -> None:
    report = quality(segmented).series[0]
    cited = answered(ANSWERS)
    statements = compose(report, segmented.lesions, cited, TRIAGE)
    series = read_series(list(segmented.source.datasets))
    heat = np.zeros(series.volume.shape[1:], dtype=np.float32)
    heat[40:60, 40:60] = 0.8
    groundings = [Grounding(1, 5, heat), Grounding(2, 6, np.zeros_like(heat))]  # a cold map makes no image
    outputs = build_outputs(
        series,
        segmented.seg,
        segmented.labels,
        segmented.lesions,
        statements,
        cited,
        VLM_MODEL,
        Uids.derived("job", "1", "1", "series"),
        groundings=groundings,
        quality=report,
        triage=TRIAGE,
        segmentation_model=SEG_MODEL,
    )
    names = [f.name for f in outputs.key_images]
    assert names == [*(f"key-lesion-{lesion.lesion_id}.dcm" for lesion in segmented.lesions), "heatmap-answer-1.dcm"]
    path = tmp_path / "sr.dcm"
    path.write_bytes(outputs.sr.data)
    assert set(dciodvfy(path)) <= {PRIVATE_SCHEME_WARNING}
    back = hd.sr.srread(path)
    written = written_statements(back)
    assert [(w.section, w.text) for w in written] == [(s.section, s.text) for s in statements]
    assert [w.labels for w in written] == [tuple(r.label for r in s.evidence) for s in statements]
    measurement = hd.sr.MeasurementReport.from_sequence(back.content)
    groups = {str(g.tracking_identifier): g for g in measurement.get_image_measurement_groups()}
    assert {"quality report", "triage score", "answer 1", "answer 2", "lesion search"} <= set(groups)
    credited = {
        label: {
            c.ConceptNameCodeSequence[0].CodeValue: str(c.TextValue)
            for c in g[0].ContentSequence
            if c.ValueType == "TEXT"
        }
        for label, g in groups.items()
    }
    assert (
        credited["quality report"]["111001"] == IQA_MODEL.name and credited["quality report"]["iqa-verdict"] == "good"
    )
    assert credited["triage score"]["111001"] == TRIAGE_MODEL.name
    [score] = groups["triage score"].get_measurements()
    assert score.value == pytest.approx(0.83)
    for written_item in written:
        assert len(written_item.tracking_uids) == len(written_item.labels)
    [observer] = measurement.get_observer_contexts(observer_type=codes.DCM.Device)
    assert observer.observer_identifying_attributes.name == VLM_MODEL.name

    for image in outputs.key_images:
        target = tmp_path / image.name
        target.write_bytes(image.data)
        assert set(dciodvfy(target)) <= EXTENDED_SOP_CLASS, image.name
    first = pydicom.dcmread(io.BytesIO(outputs.key_images[0].data))
    z = int(np.argmax(np.count_nonzero((segmented.labels == 1).reshape(series.depth, -1), axis=1)))
    assert first.SourceImageSequence[0].ReferencedSOPInstanceUID == series.sources[z][0].SOPInstanceUID
    heat_image = pydicom.dcmread(io.BytesIO(outputs.key_images[-1].data))
    assert heat_image.SourceImageSequence[0].ReferencedSOPInstanceUID == series.sources[5][0].SOPInstanceUID
    # the same request derives the same objects (a redelivered step rewrites them)
    again = Uids.derived("job", "1", "1", "series")
    assert again == Uids.derived("job", "1", "1", "series") and again != Uids.derived("job", "1", "2", "series")
