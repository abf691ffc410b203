"""A lesion's organ when the segmentation names none (its model outlines lesions only): the
reasoning step asks the grounded VQA model which organ holds the lesion, on the slice where it
is largest, and takes the answer only when the grounding map points at that lesion. Then the
report's sentence says where the organ came from and cites the answer, and the SR's finding
site is the organ's SNOMED code, inferred from the answer's group; the SR stays valid for
dciodvfy and reads back in highdicom. When the map points elsewhere the organ stays unnamed
and the answer is not cited.

Most tests use :class:`PointingVqa`, a stand-in that grounds where the test says, because they
are about where the map points, which the real model does not let a test choose. The last runs
the packaged model on a CT of its held-out seed (a liver and a spleen lesion), once with the
SEG as segmented and once with the lesions' masks moved into the air around the body, where
its map does not point.
"""

from __future__ import annotations

import io
from pathlib import Path

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset
from scipy import ndimage
from shared_fixtures import dciodvfy
from vlm_fixtures import SEG_MODEL, VLM_MODEL, SegmentedStudy, segment

from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_common.schemas.segmentation import Lesion
from medgate_common.synth import SynthStudy, generate_study, write_dataset
from medgate_seg.core.dicom_seg import SegIdentity, build_seg, seg_bytes
from medgate_seg.core.lesions import find_lesions
from medgate_vlm.core.dicom_sr import ORGAN_SITES, build_sr, written_statements
from medgate_vlm.core.evidence import LOCATION_ORGANS, EvidenceError, EvidenceRef, LesionSite, ReportStatement
from medgate_vlm.core.pipeline import SITE_QUESTION, Asked, Reasoner, Report, site_named
from medgate_vlm.core.report import Uids
from medgate_vlm.core.study import ReportSeries, grounded_on, largest_slice_of, read_series
from medgate_vlm.core.vqa import CANNOT_ANSWER, VqaResult, load_vqa

pytestmark = pytest.mark.integration

#: medgate_ml.vqa.data.TEST_SEED: the generator seed of studies the VQA model never trained on.
VQA_TEST_SEED = 8300
PRIVATE_SCHEME_WARNING = (
    "Warning - Unrecognized defined term <99MEDGATE> for value 1 of attribute <Coding Scheme Designator>"
)
FINDING_SITE = "363698007"
UNNAMED = "in an organ the segmentation does not name"
Point = tuple[int, int]


class PointingVqa:
    """Answers every question as a location question ("liver" unless told otherwise), with a
    grounding blob peaking (0.9) at ``points[slice_index]``, or at the image's corner on a
    slice the test names no point for."""

    def __init__(
        self, points: dict[int, Point], organ: str = "liver", *, intent: str = "location", consistent: bool = True
    ) -> None:
        self.points, self.organ, self.intent, self.consistent = points, organ, intent, consistent
        self.calls: list[tuple[str, int]] = []

    def answer(
        self,
        image: npt.NDArray[np.floating],
        modality: str,
        question: str,
        *,
        spacing_mm: tuple[float, float] = (1.0, 1.0),
        slice_index: int = 0,
    ) -> VqaResult:
        self.calls.append((question, slice_index))
        row, col = self.points.get(slice_index, (2, 2))
        rr, cc = np.mgrid[: image.shape[0], : image.shape[1]]
        heat = (0.9 * np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * 3.0**2))).astype(np.float32)
        rows, cols = np.nonzero(heat >= 0.5)
        box = (slice_index, int(rows.min()), int(cols.min()), slice_index, int(rows.max()), int(cols.max()))
        text = f"<rationale>stand-in</rationale><answer>{self.organ}</answer>"
        grounded = GroundedAnswer(
            question=question, answer=self.organ, rationale=text, grounding_box=box, confidence=0.8
        )
        return VqaResult(grounded, heat, self.intent, True, self.consistent)


def organless(lesions: tuple[Lesion, ...]) -> tuple[Lesion, ...]:
    """The lesions as the seg service reports them: no organ."""
    return tuple(lesion.model_copy(update={"organ": None}) for lesion in lesions)


def centre_of(labels: npt.NDArray[np.uint16], lesion_id: int) -> tuple[int, Point]:
    """The slice where the lesion is largest and the lesion pixel nearest its centre there."""
    z = largest_slice_of(labels, lesion_id)
    pixels = np.argwhere(labels[z] == lesion_id)
    nearest = pixels[np.argmin(np.hypot(*(pixels - pixels.mean(axis=0)).T))]
    return z, (int(nearest[0]), int(nearest[1]))


def draft(
    vqa: object, series: ReportSeries, seg: Dataset, lesions: tuple[Lesion, ...], tmp_path: Path
) -> tuple[Report, Dataset]:
    """The report drafted with only the site questions asked, and its SR checked by dciodvfy."""
    reasoner = Reasoner(vqa, VLM_MODEL, questions=())  # type: ignore[arg-type]
    report = reasoner.report(series, seg, lesions, None, Uids.fresh(), segmentation_model=SEG_MODEL)
    path = tmp_path / "report.dcm"
    path.write_bytes(report.outputs.sr.data)
    assert set(dciodvfy(path)) <= {PRIVATE_SCHEME_WARNING}
    return report, hd.sr.srread(path)


def finding_sites(sr: Dataset) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """Per lesion group: its finding sites' SNOMED codes, as highdicom reads them back, and the
    (value type, value) of what the finding site items are INFERRED FROM."""
    measurement = hd.sr.MeasurementReport.from_sequence(sr.content)
    out = {}
    for group in measurement.get_volumetric_roi_measurement_groups():
        codes = [f"{site.value.scheme_designator}:{site.value.value}" for site in group.finding_sites]
        inferred = [
            (c.ValueType, str(c.TextValue) if c.ValueType == "TEXT" else str(c.UID))
            for item in group[0].ContentSequence
            if item.ConceptNameCodeSequence[0].CodeValue == FINDING_SITE
            for c in item.get("ContentSequence", [])
            if c.RelationshipType == "INFERRED FROM"
        ]
        out[str(group.tracking_identifier)] = (codes, inferred)
    return out


def answer_uids(sr: Dataset) -> dict[str, str]:
    measurement = hd.sr.MeasurementReport.from_sequence(sr.content)
    return {str(g.tracking_identifier): str(g.tracking_uid) for g in measurement.get_image_measurement_groups()}


@pytest.fixture(scope="module")
def series(segmented: SegmentedStudy) -> ReportSeries:
    return read_series(list(segmented.source.datasets))


def test_the_location_answers_map_to_coded_sites() -> None:
    assert {k: ORGAN_SITES[v].value for k, v in LOCATION_ORGANS.items()} == {
        "liver": "10200004",
        "spleen": "78961009",
        "kidney": "64033007",
        "white matter": "68523003",
    }


def test_a_map_pointing_at_the_lesion_names_its_site_and_the_report_and_sr_cite_the_answer(
    segmented: SegmentedStudy, series: ReportSeries, tmp_path: Path
) -> None:
    lesions = organless(segmented.lesions)
    z, point = centre_of(segmented.labels, 1)
    vqa = PointingVqa({z: point})
    report, sr = draft(vqa, series, segmented.seg, lesions, tmp_path)

    # one site question per lesion, each on the slice where that lesion is largest
    assert vqa.calls == [(SITE_QUESTION, largest_slice_of(segmented.labels, k.lesion_id)) for k in lesions]
    assert len(report.asked) == len(lesions) and [a.lesion_id for a in report.asked] == [k.lesion_id for k in lesions]
    # only lesion 1's answer points at its lesion: it alone is cited, as answer 1
    assert report.sites == (LesionSite(1, "liver", 1),)
    assert [a.grounding_box for a in report.cited] == [report.asked[0].result.grounded.grounding_box]
    texts = {s.text.split(":")[0]: [r.label for r in s.evidence] for s in report.statements}
    assert texts["Lesion 1 in the liver (organ from grounded answer 1)"] == ["lesion 1", "lesion 1 volume", "answer 1"]
    for lesion in lesions[1:]:
        assert texts[f"Lesion {lesion.lesion_id} {UNNAMED}"] == [
            f"lesion {lesion.lesion_id}",
            f"lesion {lesion.lesion_id} volume",
        ]
    assert any(s.text.startswith(f'Asked "{SITE_QUESTION}"') for s in report.statements)
    # the grounded answer's heatmap is a key image, on lesion 1's slice
    assert [f.name for f in report.outputs.key_images][-1] == "heatmap-answer-1.dcm"

    sites = finding_sites(sr)
    assert sites["lesion 1"] == (["SCT:10200004"], [("TEXT", "answer 1"), ("UIDREF", answer_uids(sr)["answer 1"])])
    for lesion in lesions[1:]:
        assert sites[f"lesion {lesion.lesion_id}"] == ([], [])
    written = written_statements(sr)
    assert [w.labels for w in written] == [tuple(r.label for r in s.evidence) for s in report.statements]


def test_a_map_pointing_elsewhere_leaves_the_organ_unnamed_and_the_answer_uncited(
    segmented: SegmentedStudy, series: ReportSeries, tmp_path: Path
) -> None:
    lesions = organless(segmented.lesions)
    z, (row, col) = centre_of(segmented.labels, 1)
    # 6 pixels beside lesion 1, in the same organ: near, but not on it
    report, sr = draft(PointingVqa({z: (row, col + 6)}), series, segmented.seg, lesions, tmp_path)
    assert report.sites == () and report.cited == () and len(report.asked) == len(lesions)
    assert report.answers[0].answer == "liver"  # given (the API lists it), not cited
    findings = [s.text for s in report.statements if s.text.startswith("Lesion ")]
    assert len(findings) == len(lesions) and all(UNNAMED in text for text in findings)
    assert all(s.evidence[-1].label != "answer 1" for s in report.statements)
    assert not any(f.name.startswith("heatmap") for f in report.outputs.key_images)
    assert all(site == ([], []) for site in finding_sites(sr).values())


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"intent": "presence"}, "not a location answer"),
        ({"consistent": False}, "its rationale disagrees with it"),
        ({"organ": "aorta"}, "not an organ lesions are located in"),
    ],
)
def test_an_answer_on_the_lesion_is_still_refused_when(
    segmented: SegmentedStudy, series: ReportSeries, change: dict[str, object], why: str
) -> None:
    z, point = centre_of(segmented.labels, 1)
    vqa = PointingVqa({z: point})
    result = vqa.answer(series.volume.array[z], "CT", SITE_QUESTION, slice_index=z)
    assert site_named(Asked(result, z, 1), segmented.labels) == "liver"
    changed = PointingVqa({z: point}, **change)  # type: ignore[arg-type]
    result = changed.answer(series.volume.array[z], "CT", SITE_QUESTION, slice_index=z)
    assert site_named(Asked(result, z, 1), segmented.labels) is None, why
    assert site_named(Asked(result, z, None), segmented.labels) is None  # not a site question
    empty = VqaResult(
        GroundedAnswer(question="q", answer=CANNOT_ANSWER, rationale="r", confidence=0),
        result.heatmap * 0,
        "",
        False,
        True,
    )
    assert site_named(Asked(empty, z, 1), segmented.labels) is None


def test_the_peak_must_touch_the_lesion_and_be_nearer_to_it_than_to_any_other() -> None:
    labels = np.zeros((2, 32, 32), dtype=np.uint16)
    labels[1, 10:14, 10:14] = 1
    labels[1, 10:14, 17:21] = 2

    def peak_at(row: int, col: int, value: float = 0.9) -> npt.NDArray[np.float32]:
        heat = np.zeros((32, 32), dtype=np.float32)
        heat[row, col] = value
        return heat

    assert grounded_on(labels, 1, 1, peak_at(12, 12), None)  # inside
    assert grounded_on(labels, 1, 1, peak_at(14, 14), None)  # touching, diagonally
    assert not grounded_on(labels, 1, 1, peak_at(12, 16), None)  # between them, nearer to 2
    assert grounded_on(labels, 1, 2, peak_at(12, 16), None)
    assert not grounded_on(labels, 1, 1, peak_at(12, 15), None)  # as near to 1 as to 2
    assert not grounded_on(labels, 1, 1, peak_at(17, 12), None)  # 3 pixels below
    assert not grounded_on(labels, 0, 1, peak_at(12, 12), None)  # not on this slice
    assert not grounded_on(labels, 1, 1, peak_at(12, 12, 0.3), None)  # nothing grounded
    two = peak_at(12, 12) + peak_at(12, 19)  # equal peaks on both: about neither
    assert not grounded_on(labels, 1, 1, two, None) and not grounded_on(labels, 1, 2, two, None)
    cold = np.zeros((32, 32), dtype=np.float32)
    assert grounded_on(labels, 1, 1, cold, (1, 9, 9, 1, 15, 15))  # only a box: its centre
    assert not grounded_on(labels, 1, 1, cold, (0, 9, 9, 0, 15, 15))  # a box on another slice
    assert not grounded_on(labels, 1, 1, cold, (1, 20, 20, 1, 30, 30))


def test_a_site_must_rest_on_an_answer_given_for_a_lesion_the_segmentation_does_not_name(
    segmented: SegmentedStudy,
) -> None:
    lesions = organless(segmented.lesions)
    statement = ReportStatement("Lesion 1.", (EvidenceRef.lesion(1),))
    answer = GroundedAnswer(question=SITE_QUESTION, answer="liver", rationale="r", confidence=0.8)
    count = GroundedAnswer(question="How many lesions are there?", answer="2", rationale="r", confidence=0.8)
    for sites, lesion_list, message in (
        ((LesionSite(1, "liver", 3),), lesions, "2 answer"),
        ((LesionSite(9, "liver", 1),), lesions, "did not report"),
        ((LesionSite(1, "liver", 1),), segmented.lesions, "segmentation's"),
        ((LesionSite(1, "pancreas", 1),), lesions, "answered 'liver'"),  # the answer names another organ
        ((LesionSite(1, "liver", 2),), lesions, "answered '2'"),  # not a location answer
        ((LesionSite(1, "liver", 1), LesionSite(1, "liver", 1)), lesions, "more than one site"),
    ):
        with pytest.raises(EvidenceError, match=message):
            build_sr(
                segmented.source.datasets,
                segmented.seg,
                lesion_list,
                [statement],
                VLM_MODEL,
                answers=[answer, count],
                sites=sites,
                series_instance_uid="1.2.3",
                sop_instance_uid="1.2.3.4",
            )


@pytest.fixture(scope="module")
def two_organs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthStudy, SegmentedStudy]:
    """A CT at the VQA model's training geometry (32 slices, 96 matrix) of its held-out test
    seed, with a lesion in the liver and one in the spleen."""
    study = generate_study("CT", seed=VQA_TEST_SEED, index=4, slices=32, matrix=96, lesion_count=2)
    folder = tmp_path_factory.mktemp("two_organs")
    write_dataset(study, folder)
    segmented = segment(study, folder)
    assert sorted(str(lesion.organ) for lesion in segmented.lesions) == ["liver", "spleen"]
    return study, segmented


def moved_into_air(study: SynthStudy, segmented: SegmentedStudy) -> tuple[Dataset, tuple[Lesion, ...]]:
    """A SEG (and its lesion list, no organs) whose lesions have their masks moved into the
    corners of the image, outside the body, where the real lesions are not."""
    _, rows, cols = segmented.labels.shape
    moved = np.zeros(segmented.labels.shape, dtype=bool)
    for k, lesion in enumerate(segmented.lesions):
        z, r, c = np.nonzero(segmented.labels == lesion.lesion_id)
        dr = 3 - r.min() if k % 2 == 0 else rows - 4 - r.max()
        dc = 3 - c.min() if k < 2 else cols - 4 - c.max()
        moved[z, r + dr, c + dc] = True
    assert not study.organs[moved].any()  # all in air
    source = segmented.source
    found = find_lesions(moved, source.volume, source.slice_numbers, min_lesion_ml=0.0, group_mm=0.0)
    assert len(found.lesions) == len(segmented.lesions)
    seg = build_seg(
        source.datasets,
        source.volume.frame_numbers,
        found.labels,
        found.lesions,
        SEG_MODEL,
        0.5,
        SegIdentity.derived("vlm-tests-moved", study.truth.series_instance_uid),
        "0.1.0",
    )
    return pydicom.dcmread(io.BytesIO(seg_bytes(seg))), found.lesions


@pytest.mark.slow
def test_the_packaged_model_names_a_site_only_where_its_map_points_at_the_lesion(
    two_organs: tuple[SynthStudy, SegmentedStudy], tmp_path: Path
) -> None:
    study, segmented = two_organs
    series = read_series(list(segmented.source.datasets))
    vqa = load_vqa()
    report, sr = draft(vqa, series, segmented.seg, organless(segmented.lesions), tmp_path)
    truth = {lesion.lesion_id: lesion.organ for lesion in segmented.lesions}
    answers = {a.lesion_id: (a.result.grounded.answer, float(a.result.heatmap.max())) for a in report.asked}
    assert report.sites, answers
    sites = finding_sites(sr)
    for site in report.sites:
        # a named site is the lesion's true organ, and the map's peak is on the lesion
        assert site.organ == truth[site.lesion_id], answers
        [asked] = [a for a in report.asked if a.lesion_id == site.lesion_id]
        peak = np.unravel_index(np.argmax(asked.result.heatmap), asked.result.heatmap.shape)
        mask = segmented.labels[asked.index] == site.lesion_id
        assert ndimage.binary_dilation(mask, np.ones((3, 3), dtype=bool))[peak]
        assert sites[f"lesion {site.lesion_id}"][0] == [f"SCT:{ORGAN_SITES[site.organ].value}"]
    named = {site.lesion_id for site in report.sites}
    for lesion_id in set(truth) - named:
        assert sites[f"lesion {lesion_id}"] == ([], [])

    # the same images, the masks moved into the air: the map points at the real lesions,
    # so no answer is taken for a moved one
    seg, moved = moved_into_air(study, segmented)
    assert all(lesion.organ is None for lesion in moved)
    (tmp_path / "moved").mkdir()
    report, sr = draft(vqa, series, seg, moved, tmp_path / "moved")
    assert len(report.asked) == len(moved) and report.sites == () and report.cited == ()
    assert all(site == ([], []) for site in finding_sites(sr).values())
