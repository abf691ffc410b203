"""The unified output, UniMedVL's "understanding + generation" in one call: the study's results
become a draft report (findings and impression) and its pictures (key images, heatmaps).

:func:`compose` writes the sentences. Each one is made from one result and cites it
(:mod:`.evidence`): the quality gate's report, a lesion and its volume, the lesion search as a
whole, a grounded VQA answer, the triage score. A lesion's organ is the segmentation's; where
it names none and a grounded answer about that lesion does (:class:`.evidence.LesionSite`),
the sentence says so and cites the answer too. Nothing is written that no result says; an
answer the model could not give ("cannot answer from this study") is not turned into a
sentence. It refuses a study the gate rejected and a series without a segmentation result.

:func:`build_outputs` turns the sentences into DICOM: the TID 1500 SR (:mod:`.dicom_sr`) and
Secondary Capture key images (:mod:`.key_images`): per lesion the slice where it is largest,
all outlines drawn; per answer with a grounding map that slice with the heatmap beneath.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityReport, Verdict
from medgate_common.schemas.reasoning import DraftStatement, GroundedAnswer, TriageScore
from medgate_common.schemas.segmentation import Lesion
from medgate_vlm.core.dicom_sr import build_sr, sr_bytes
from medgate_vlm.core.evidence import EvidenceRef, LesionSite, ReportStatement, Section
from medgate_vlm.core.key_images import Rendering, build_key_image, render, sc_bytes
from medgate_vlm.core.study import (
    LabelMap,
    MissingSegmentationError,
    QualityRejectedError,
    ReportSeries,
    largest_slice_of,
    slice_number,
)
from medgate_vlm.core.vqa import CANNOT_ANSWER

DICOM = "application/dicom"
PNG = "image/png"


def _where(lesion: Lesion, site: LesionSite | None) -> str:
    if lesion.organ:
        return f"in the {lesion.organ.replace('_', ' ')}"
    if site is not None:
        return f"in the {site.organ.replace('_', ' ')} (organ from grounded answer {site.answer})"
    return "in an organ the segmentation does not name"


def _about(lesion: Lesion, site: LesionSite | None) -> tuple[EvidenceRef, ...]:
    """What a sentence about the lesion's volume and organ rests on: the lesion, its volume and,
    when the organ is a grounded answer's, that answer."""
    refs = (EvidenceRef.lesion(lesion.lesion_id), EvidenceRef.volume_of(lesion.lesion_id))
    return (*refs, site.evidence) if site is not None and not lesion.organ else refs


def _slices(lesion: Lesion) -> str:
    first, last = lesion.slice_range
    return f"image {first}" if first == last else f"images {first}-{last}"


def answered(answers: Sequence[GroundedAnswer]) -> list[GroundedAnswer]:
    """The answers a report may cite: those the model could give."""
    return [a for a in answers if a.answer.strip() and a.answer != CANNOT_ANSWER]


def refuse(quality: QualityReport | None, lesions: Sequence[Lesion] | None) -> None:
    """Raise for a series no report may be drafted on: rejected by the gate, or not segmented."""
    if quality is not None and quality.verdict is Verdict.reject:
        raise QualityRejectedError(
            f"the quality gate rejected the series: {quality.reasoning}", series=quality.series_instance_uid
        )
    if lesions is None:
        raise MissingSegmentationError("there is no segmentation result for the series; the report cites its lesions")


def compose(
    quality: QualityReport | None,
    lesions: Sequence[Lesion] | None,
    answers: Sequence[GroundedAnswer],
    triage: TriageScore | None,
    *,
    sites: Sequence[LesionSite] = (),
) -> list[ReportStatement]:
    """The draft report's statements, every one citing its evidence.

    ``quality`` is the gate's report on the series (None when no gate ran); ``lesions`` the
    segmentation's lesions of the series (None: no segmentation result, refused); ``answers``
    the grounded answers as the SR will number them (pass :func:`answered`); ``triage`` the
    study's score (None: no triage model, nothing is said about triage); ``sites`` the organs
    grounded answers name for lesions the segmentation names none of (a sentence saying such
    an organ cites the answer too).
    """
    refuse(quality, lesions)
    assert lesions is not None  # refuse()
    site_of = {site.lesion_id: site for site in sites}
    findings: list[ReportStatement] = []
    impression: list[ReportStatement] = []
    if quality is not None:
        findings.append(
            ReportStatement(f"Image quality {quality.verdict.value}: {quality.reasoning}", (EvidenceRef.quality(),))
        )
    ordered = sorted(lesions, key=lambda lesion: lesion.lesion_id)
    for lesion in ordered:
        fragments = f", in {lesion.components} fragments" if lesion.components > 1 else ""
        findings.append(
            ReportStatement(
                f"Lesion {lesion.lesion_id} {_where(lesion, site_of.get(lesion.lesion_id))}: "
                f"volume {lesion.volume_ml:.2f} mL, {_slices(lesion)}{fragments}.",
                _about(lesion, site_of.get(lesion.lesion_id)),
            )
        )
    if not ordered:
        findings.append(ReportStatement("No focal lesion was found.", (EvidenceRef.lesion_search(),)))
    for number, answer in enumerate(answers, start=1):
        findings.append(
            ReportStatement(
                f'Asked "{answer.question.strip()}", the grounded model answered "{answer.answer}" '
                f"(confidence {answer.confidence:.2f}).",
                (EvidenceRef.answer(number),),
            )
        )
    if ordered:
        largest = max(ordered, key=lambda lesion: lesion.volume_ml)
        count = f"{len(ordered)} focal lesion{'s' if len(ordered) > 1 else ''}"
        impression.append(
            ReportStatement(
                f"{count}; the largest, lesion {largest.lesion_id}, measures {largest.volume_ml:.2f} mL "
                f"{_where(largest, site_of.get(largest.lesion_id))}.",
                (EvidenceRef.lesion_search(), *_about(largest, site_of.get(largest.lesion_id))),
                Section.IMPRESSION,
            )
        )
    else:
        impression.append(ReportStatement("No focal lesion.", (EvidenceRef.lesion_search(),), Section.IMPRESSION))
    if quality is not None and quality.verdict is Verdict.usable:
        impression.append(
            ReportStatement(
                "Image quality is reduced (usable); read the findings with that in mind.",
                (EvidenceRef.quality(),),
                Section.IMPRESSION,
            )
        )
    if triage is not None:
        impression.append(
            ReportStatement(
                f"Triage: abnormality score {triage.score:.2f} (most likely class: {triage.label}).",
                (EvidenceRef.triage(),),
                Section.IMPRESSION,
            )
        )
    return [*findings, *impression]


def as_wire(statements: Sequence[ReportStatement]) -> tuple[DraftStatement, ...]:
    return tuple(
        DraftStatement(section=s.section.value, text=s.text, evidence=tuple(ref.label for ref in s.evidence))
        for s in statements
    )


def section_text(statements: Sequence[ReportStatement], section: Section) -> str:
    return " ".join(s.text for s in statements if s.section is section)


@dataclass(frozen=True)
class OutputFile:
    """One file of the outputs: its name in the output folder, bytes and media type."""

    name: str
    data: bytes
    media_type: str
    description: str


@dataclass(frozen=True)
class Outputs:
    sr: OutputFile
    key_images: tuple[OutputFile, ...]

    @property
    def files(self) -> tuple[OutputFile, ...]:
        return (self.sr, *self.key_images)


@dataclass(frozen=True)
class Uids:
    """UIDs of the objects one report writes. :meth:`derived` makes the same ones again for the
    same request (a redelivered task rewrites its objects); :meth:`fresh` new ones."""

    sr_series: str
    sr_instance: str
    key_series: str
    key_root: str

    @classmethod
    def derived(cls, *parts: str) -> Uids:
        def uid(what: str) -> str:
            return str(generate_uid(entropy_srcs=["medgate-vlm", *parts, what]))

        return cls(uid("sr-series"), uid("sr"), uid("key-series"), uid("key"))

    @classmethod
    def fresh(cls) -> Uids:
        return cls.derived(str(generate_uid()))

    def key_image(self, number: int) -> str:
        return str(generate_uid(entropy_srcs=[self.key_root, str(number)]))


def window_of(series: ReportSeries) -> tuple[float, float]:
    """(centre, width) to show the slices with: the series' own, else a soft-tissue window."""
    return series.volume.window or ((40.0, 400.0) if series.volume.modality == "CT" else (500.0, 1000.0))


def png(rendering: Rendering) -> bytes:
    """The picture as a PNG without metadata (no patient identifiers)."""
    buffer = io.BytesIO()
    Image.fromarray(rendering.rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def render_heatmap(
    series: ReportSeries, labels: LabelMap | None, index: int, heatmap: npt.NDArray[np.floating], caption: str
) -> Rendering:
    outline = labels[index] if labels is not None else np.zeros(series.volume.shape[1:], dtype=np.uint16)
    clipped = np.clip(np.nan_to_num(heatmap.astype(np.float32)), 0.0, 1.0)
    return render(series.volume.array[index], outline, window_of(series), caption, heatmap=clipped)


@dataclass(frozen=True)
class Grounding:
    """A grounding heatmap of answer ``number`` on slice ``index`` of the series."""

    number: int
    index: int
    heatmap: npt.NDArray[np.floating]


def build_outputs(
    series: ReportSeries,
    seg: Dataset | None,
    labels: LabelMap,
    lesions: Sequence[Lesion],
    statements: Sequence[ReportStatement],
    answers: Sequence[GroundedAnswer],
    model: ModelInfo,
    uids: Uids,
    *,
    groundings: Sequence[Grounding] = (),
    quality: QualityReport | None = None,
    triage: TriageScore | None = None,
    segmentation_model: ModelInfo | None = None,
    sites: Sequence[LesionSite] = (),
) -> Outputs:
    """The SR and the key images of a draft report, as bytes (the caller stores them)."""
    sr = build_sr(
        series.datasets,
        seg,
        lesions,
        statements,
        model,
        series_instance_uid=uids.sr_series,
        sop_instance_uid=uids.sr_instance,
        answers=answers,
        segmentation_model=segmentation_model,
        quality=quality,
        triage=triage,
        sites=sites,
    )
    count = len(lesions)
    sr_file = OutputFile(
        "report.dcm", sr_bytes(sr), DICOM, f"AI draft report (SR), {count} lesion(s), {len(statements)} statements"
    )
    images: list[OutputFile] = []
    window = window_of(series)

    def key_image(rendering: Rendering, index: int, name: str, description: str) -> None:
        ds, frame = series.sources[index]
        number = len(images) + 1
        sc = build_key_image(
            ds,
            rendering,
            model,
            series_instance_uid=uids.key_series,
            sop_instance_uid=uids.key_image(number),
            instance_number=number,
            frame_number=frame,
            description=description,
        )
        images.append(OutputFile(name, sc_bytes(sc), DICOM, f"key image: {description}"))

    for lesion in sorted(lesions, key=lambda lesion: lesion.lesion_id):
        index = largest_slice_of(labels, lesion.lesion_id)
        caption = f"image {slice_number(series, index)} - lesion {lesion.lesion_id}, {lesion.volume_ml:.2f} mL"
        rendering = render(series.volume.array[index], labels[index], window, caption)
        description = f"lesion {lesion.lesion_id} where it is largest, AI lesion outlines"
        key_image(rendering, index, f"key-lesion-{lesion.lesion_id}.dcm", description)
    for grounding in groundings:
        heat = np.asarray(grounding.heatmap, dtype=np.float32)
        if not 1 <= grounding.number <= len(answers) or not heat.any():
            continue
        caption = f"image {slice_number(series, grounding.index)} - grounding of answer {grounding.number}"
        rendering = render_heatmap(series, labels, grounding.index, heat, caption)
        description = f"grounding heatmap of answer {grounding.number} ({answers[grounding.number - 1].answer})"
        key_image(rendering, grounding.index, f"heatmap-answer-{grounding.number}.dcm", description)
    return Outputs(sr_file, tuple(images))
