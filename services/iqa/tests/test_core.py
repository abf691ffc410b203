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
from pydicom.dataset import FileMetaDataset

from medgate_common.errors import InputError
from medgate_common.inference import InferenceResult, TensorSpec
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_common.synth.study import generate_study
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.labels import ATTRIBUTES
from medgate_iqa.core.language import answer, compare, describe
from medgate_iqa.core.model import QualityModel
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
