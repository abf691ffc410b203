"""Gate logic around the network: aggregation, measured floors, words and refusals.

The network is replaced here by ``ScriptedBackend``, a real :class:`ModelBackend` that
returns chosen probabilities, because these tests are about what the gate does with the
network's output (the trained network itself is tested in test_model.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.tag import Tag

from medgate_common.errors import InputError
from medgate_common.inference import InferenceResult, TensorSpec
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_common.synth.study import generate_study
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.compression import LossyCompression, lossy_compression
from medgate_iqa.core.labels import ATTRIBUTES
from medgate_iqa.core.language import answer, compare, describe
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.policy import GatePolicy, ModalityThresholds
from medgate_iqa.core.series import NotAssessableError, read_series

INFO = ModelInfo(name="scripted", version="0", sha256="0" * 64, backend="test")


class ScriptedBackend:
    """Returns, for slice i of a batch, the i-th scripted (severity, verdict) pair."""

    def __init__(self, per_slice: list[dict[A, Severity]]) -> None:
        self.per_slice = per_slice
        self.calls = 0

    @property
    def info(self) -> ModelInfo:
        return INFO

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("image", "float32", (None, 4, 128, 128)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (
            TensorSpec("severity", "float32", (None, len(ATTRIBUTES), 3)),
            TensorSpec("verdict", "float32", (None, 3)),
        )

    def infer(self, inputs: Mapping[str, np.ndarray]) -> InferenceResult:
        batch = inputs["image"].shape[0]
        sev = np.zeros((batch, len(ATTRIBUTES), 3), dtype=np.float32)
        sev[:, :, 0] = 0.95
        sev[:, :, 1] = 0.05
        for i in range(batch):
            for attribute, level in self.per_slice[(self.calls + i) % len(self.per_slice)].items():
                j = ATTRIBUTES.index(attribute)
                sev[i, j] = {Severity.mild: (0.1, 0.8, 0.1), Severity.severe: (0.05, 0.15, 0.8)}[level]
        self.calls += batch
        verdict = np.tile(np.array([0.6, 0.3, 0.1], dtype=np.float32), (batch, 1))
        return InferenceResult({"severity": sev, "verdict": verdict}, INFO, 1.0)


def assessor(per_slice: list[dict[A, Severity]]) -> QualityAssessor:
    return QualityAssessor(QualityModel(ScriptedBackend(per_slice)))


@pytest.fixture(scope="module")
def ct_slices() -> list[np.ndarray]:
    study = generate_study("CT", seed=5, slices=12, matrix=128)
    return [study.hu_or_signal[z] for z in range(2, 11)]


def test_clean_series_is_good_with_a_closing_verdict_sentence(ct_slices: list[np.ndarray]) -> None:
    result = assessor([{}]).assess_slices(ct_slices, "CT", "1.2.3.4")
    report = result.report
    assert report.verdict is Verdict.good and report.findings == ()
    sentences = re.split(r"(?<=\.)\s+", report.reasoning)
    assert 3 <= len(sentences) <= 5
    assert sentences[-1] == "Overall, the quality of this image is good."
    assert report.statistics.noise_sigma < 20


def test_focal_artifact_on_a_third_of_slices_is_not_averaged_away(ct_slices: list[np.ndarray]) -> None:
    # 3 of 9 slices show severe metal: the worst-third mean keeps it severe.
    script = [{A.metal: Severity.severe}] * 3 + [{}] * 6
    report = assessor(script).assess_slices(ct_slices, "CT", "1.2.3.4").report
    assert report.verdict is Verdict.reject
    assert [(f.attribute, f.severity) for f in report.findings] == [(A.metal, Severity.severe)]
    assert "metal artifact" in report.reasoning
    assert report.reasoning.endswith("Overall, the quality of this image is reject.")


def test_one_odd_slice_does_not_reject_a_series(ct_slices: list[np.ndarray]) -> None:
    script = [{A.motion: Severity.severe}] + [{}] * 8
    report = assessor(script).assess_slices(ct_slices, "CT", "1.2.3.4").report
    assert report.verdict is not Verdict.reject


def test_mild_findings_make_a_series_usable(ct_slices: list[np.ndarray]) -> None:
    report = assessor([{A.noise: Severity.mild}]).assess_slices(ct_slices, "CT", "1.2.3.4").report
    assert report.verdict is Verdict.usable
    assert report.findings[0].attribute is A.noise and report.findings[0].location


def test_attributes_of_the_other_modality_are_never_reported(ct_slices: list[np.ndarray]) -> None:
    report = assessor([{A.gibbs: Severity.severe}]).assess_slices(ct_slices, "CT", "1.2.3.4").report
    assert report.verdict is Verdict.good


def test_measured_noise_floor_overrides_a_network_that_missed_it(ct_slices: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    noisy = [s + rng.normal(0, 120, s.shape).astype(np.float32) for s in ct_slices]
    report = assessor([{}]).assess_slices(noisy, "CT", "1.2.3.4").report
    assert report.statistics.noise_sigma > 60
    assert (A.noise, Severity.severe) in [(f.attribute, f.severity) for f in report.findings]
    assert report.verdict is Verdict.reject


def test_perception_answers_follow_the_assessment(ct_slices: list[np.ndarray]) -> None:
    result = assessor([{A.ring: Severity.mild}]).assess_slices(ct_slices, "CT", "1.2.3.4")
    assert answer("Is there a ring artifact in this CT image?", ["A. Yes", "B. No"], result).letter == "A"
    assert answer("Is there any metal artifact in this CT image?", ["Yes", "No"], result).letter == "B"
    what = answer(
        "What is the primary artifact visible in this CT image?",
        ["Streaks from sparse views", "Ring artifact", "Motion", "No obvious artifact"],
        result,
    )
    assert what.letter == "B" and what.kind == "what"
    how = answer("How would you rate the overall quality?", ["Good", "Usable", "Reject"], result)
    assert how.letter == "B"
    severity = answer("How severe is the ring artifact?", ["None", "Mild", "Severe"], result)
    assert severity.letter == "B"
    clean = assessor([{}]).assess_slices(ct_slices, "CT", "1.2.3.4")
    none = answer("What is the primary artifact?", ["Metal artifact", "No obvious artifact", "Ring artifact"], clean)
    assert none.letter == "B"
    with pytest.raises(InputError):
        answer("Is the optic disc visible?", ["Yes", "No"], result)
    with pytest.raises(InputError):
        answer("Is there noise?", ["Yes"], result)


def test_comparison_prefers_the_better_image(ct_slices: list[np.ndarray]) -> None:
    good = assessor([{}]).assess_slices(ct_slices, "CT", "1.1")
    bad = assessor([{A.motion: Severity.severe}]).assess_slices(ct_slices, "CT", "1.2")
    result = compare(bad, good)
    assert result.preferred == "B"
    assert result.text.endswith("Overall, image B has the higher quality.")
    assert "motion artifact" in result.text


def test_describe_names_every_finding_and_its_effect(ct_slices: list[np.ndarray]) -> None:
    script = [{A.noise: Severity.mild, A.streak: Severity.severe, A.ring: Severity.mild}]
    report = assessor(script).assess_slices(ct_slices, "CT", "1.2.3.4").report
    text = describe(report)
    for word in ("noise", "streak", "ring"):
        assert word in text
    assert 3 <= len(re.split(r"(?<=\.)\s+", text)) <= 5 or "Further findings" in text


def _dataset(modality: str = "CT", rows: int = 64, colour: bool = False, pixels: bool = True) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.Modality = modality
    ds.SeriesInstanceUID = "1.2.3.9"
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated = 8 if colour else 16
    ds.BitsStored = 8 if colour else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    if pixels:
        shape = (rows, rows, 3) if colour else (rows, rows)
        array = np.random.default_rng(0).integers(0, 255 if colour else 4000, shape)
        ds.PixelData = array.astype(np.uint8 if colour else np.uint16).tobytes()
    return ds


@pytest.mark.parametrize(
    ("dataset", "reason"),
    [
        (_dataset(colour=True), "colour"),
        (_dataset(rows=16), "too_small"),
        (_dataset(pixels=False), "no_pixel_data"),
        (_dataset(modality="US"), "unsupported_modality"),
    ],
)
def test_series_that_cannot_be_assessed_say_why(dataset: pydicom.Dataset, reason: str) -> None:
    with pytest.raises(NotAssessableError) as caught:
        read_series([dataset])
    assert caught.value.details["reason"] == reason
    assert caught.value.http_status == 422


def test_a_study_lists_what_it_could_not_assess(ct_slices: list[np.ndarray]) -> None:
    gate = assessor([{}])
    study = generate_study("CT", seed=5, slices=6, matrix=64)
    good = []
    for z in range(6):
        ds = _dataset(rows=64)
        ds.PixelData = np.clip(study.stored[z], 0, 4095).astype(np.uint16).tobytes()
        ds.InstanceNumber = z + 1
        good.append(ds)
    report = gate.assess_study("1.2.3", [("1.2.3.9", good), ("1.2.3.10", [_dataset(colour=True)])])
    assert report.verdict in (Verdict.good, Verdict.usable)
    assert [(n.series_instance_uid, n.code) for n in report.not_assessable] == [("1.2.3.10", "colour")]
    with pytest.raises(NotAssessableError) as caught:
        gate.assess_study("1.2.3", [("1.2.3.10", [_dataset(colour=True)])])
    assert caught.value.details["reason"] == "no_assessable_series"
    assert "colour" in caught.value.message


def _lossy(
    syntax: str = pydicom.uid.ExplicitVRLittleEndian, flag: str | None = None, **tags: object
) -> pydicom.Dataset:
    ds = _dataset()
    ds.file_meta.TransferSyntaxUID = syntax
    if flag is not None:
        ds.LossyImageCompression = flag
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


_TS = "1.2.840.10008.1.2.4."


def _code(value: str, scheme: str) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, "Lossy Compression"
    return item


def _malformed_ratio(ds: pydicom.Dataset) -> pydicom.Dataset:
    tag = Tag(0x0028, 0x2112)  # LossyImageCompressionRatio, as a writer got it wrong
    ds[tag] = RawDataElement(tag, "DS", 3, b"n/a", 0, False, True)
    return ds


@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        ([_dataset()], None),  # never compressed
        ([_lossy(flag="00")], None),
        # a lossless JPEG 2000 says so; an unflagged one is read as lossy (the cautious reading)
        ([_lossy("1.2.840.10008.1.2.4.91", flag="00")], None),
        ([_lossy("1.2.840.10008.1.2.4.91")], LossyCompression("JPEG 2000", None, 1, 1)),
        # baseline JPEG is lossy whatever the flag says
        ([_lossy(pydicom.uid.JPEGBaseline8Bit, flag="00")], LossyCompression("JPEG baseline", None, 1, 1)),
        # decompressed since: the flag, ratio and method stay
        (
            [_lossy(flag="01", LossyImageCompressionRatio=8.5, LossyImageCompressionMethod="ISO_10918_1")],
            LossyCompression("JPEG", 8.5, 1, 1),
        ),
        # two lossy steps: the largest ratio, from the worst instance of the series
        (
            [
                _lossy(flag="01", LossyImageCompressionRatio=[4, 30], LossyImageCompressionMethod=["ISO_15444_1"] * 2),
                _lossy(flag="01", LossyImageCompressionRatio=10),
                _dataset(),
            ],
            LossyCompression("JPEG 2000", 30.0, 2, 3),
        ),
        # a malformed ratio is no ratio, but the flag still counts
        ([_malformed_ratio(_lossy(flag="01"))], LossyCompression("unknown method", None, 1, 1)),
        # lossless syntaxes are never lossy by themselves
        *[([_lossy(_TS + n)], None) for n in ("57", "70", "80", "90", "201", "202", "110")],
        # JPEG XL's JPEG recompression carries a baseline JPEG
        ([_lossy(_TS + "111", flag="00")], LossyCompression("JPEG XL (recompressed JPEG)", None, 1, 1)),
        # a writer that dropped the flag but kept the derivation code
        ([_lossy(DerivationCodeSequence=[_code("113040", "DCM")])], LossyCompression("unknown method", None, 1, 1)),
        ([_lossy(DerivationCodeSequence=[_code("113040", "99LOCAL")])], None),
    ],
)
def test_lossy_compression_is_read_from_the_headers(
    datasets: list[pydicom.Dataset], expected: LossyCompression | None
) -> None:
    assert lossy_compression(datasets) == expected


@pytest.mark.parametrize(
    ("modality", "ratio", "severity", "verdict"),
    [
        ("CT", 10.0, Severity.mild, Verdict.usable),  # within the 12:1 limit for CT
        ("CT", 20.0, Severity.severe, Verdict.reject),
        ("MR", 20.0, Severity.mild, Verdict.usable),  # MR tolerates 24:1
        ("MR", None, Severity.mild, Verdict.usable),  # lossy, ratio not recorded
        ("CT", 12.0, Severity.mild, Verdict.usable),  # at the limit is still within it
    ],
)
def test_lossy_compression_is_a_finding_graded_by_the_modalitys_limit(
    ct_slices: list[np.ndarray], modality: str, ratio: float | None, severity: Severity, verdict: Verdict
) -> None:
    compression = LossyCompression("JPEG 2000", ratio, 12, 12)
    result = assessor([{}]).assess_slices(ct_slices, modality, "1.2.3.4", compression)
    assert result.report.verdict is verdict
    (finding,) = result.report.findings
    assert (finding.attribute, finding.severity, finding.probability) == (A.compression, severity, 1.0)
    assert (
        "JPEG 2000" in finding.location
        and ("ratio not recorded" if ratio is None else f"{ratio:.0f}:1") in finding.location
    )
    assert "lossy compression" in result.report.reasoning
    assert result.present[A.compression] == 1.0
    # the answer to "is there lossy compression?" comes from the header, too
    reply = answer("Is this image lossy compressed?", ["A. Yes", "B. No"], result)
    assert reply.letter == "A"
    # a site with a stricter standard says so in its policy
    strict = GatePolicy(
        modalities={m: ModalityThresholds(noise_severe=60.0, lossy_ratio_severe=5.0) for m in ("CT", "MR")}
    )
    if ratio is not None:
        gated = QualityAssessor(assessor([{}]).model, strict).assess_slices(ct_slices, modality, "1.2.3.4", compression)
        assert gated.report.verdict is Verdict.reject


def test_a_series_reader_carries_the_compression_of_its_instances(ct_slices: list[np.ndarray]) -> None:
    study = generate_study("CT", seed=5, slices=4, matrix=64)
    datasets = []
    for z in range(4):
        ds = _lossy(flag="01", LossyImageCompressionRatio=40, LossyImageCompressionMethod="ISO_15444_1")
        ds.PixelData = np.clip(study.stored[z], 0, 4095).astype(np.uint16).tobytes()
        ds.InstanceNumber = z + 1
        datasets.append(ds)
    series = read_series(datasets)
    assert series.compression == LossyCompression("JPEG 2000", 40.0, 4, 4)
    report = assessor([{}]).assess_series(datasets).report
    assert report.verdict is Verdict.reject
    assert report.findings[0].attribute is A.compression
    assert "40:1" in report.findings[0].location


@pytest.mark.parametrize(("target", "severity"), [(40, Severity.severe), (5, Severity.mild)])
def test_an_unflagged_lossy_encoding_is_measured_from_its_size(
    ct_slices: list[np.ndarray], target: int, severity: Severity
) -> None:
    """pydicom's JPEG 2000 encoder (openjpeg) writes lossy files with no Lossy Image
    Compression flag or ratio; the gate measures the ratio from the encapsulated size."""
    from medgate_common.samples import locate

    ds = pydicom.dcmread(locate("CT_small.dcm"))
    ds.compress(pydicom.uid.JPEG2000, j2k_cr=[target])
    assert "LossyImageCompression" not in ds
    found = lossy_compression([ds])
    assert found is not None and found.measured and found.method == "JPEG 2000"
    assert found.ratio is not None and 0.7 * target <= found.ratio <= 1.3 * target
    report = assessor([{}]).assess_series([ds]).report
    (finding,) = report.findings
    assert (finding.attribute, finding.severity) == (A.compression, severity)
    assert "measured from the encoded size" in finding.location


def test_a_site_can_reject_every_lossy_image() -> None:
    ct = generate_study("CT", seed=5, slices=3, matrix=64).hu_or_signal
    strict = GatePolicy(
        modalities={
            m: ModalityThresholds(noise_severe=60.0, lossy_ratio_severe=1.0, lossy_unknown_ratio="severe")
            for m in ("CT", "MR")
        }
    )
    gate = QualityAssessor(assessor([{}]).model, strict)
    for ratio in (2.0, None):
        report = gate.assess_slices(list(ct), "CT", "1.2.3.4", LossyCompression("JPEG", ratio, 3, 3)).report
        assert report.verdict is Verdict.reject, ratio


def test_the_stream_counts_and_a_lossless_re_encoding_does_not() -> None:
    """Real files: 693_J2KI is a 339:1 JPEG 2000 image whose header says so; 693_J2KR is the
    lossless original (reversible JPEG 2000, 1.2.840.10008.1.2.4.90)."""
    from medgate_common.samples import locate

    lossy = pydicom.dcmread(locate("693_J2KI.dcm"))
    found = lossy_compression([lossy])
    assert found is not None and not found.measured and round(found.ratio or 0) == 339
    # a stale record (5:1) does not hide the 335:1 stream still held in a lossy syntax
    lossy.LossyImageCompressionRatio = 5
    found = lossy_compression([lossy])
    assert found is not None and found.measured and 300 < (found.ratio or 0) < 345
    # flagged lossy, then stored losslessly: the lossless stream's size says nothing
    original = pydicom.dcmread(locate("693_J2KR.dcm"))
    assert lossy_compression([original]) is None
    original.LossyImageCompression = "01"
    assert lossy_compression([original]) == LossyCompression("unknown method", None, 1, 1)
