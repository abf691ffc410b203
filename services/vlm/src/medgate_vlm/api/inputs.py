"""What the reasoning routes read from a request: the images of one series (uploaded files, or
a study reference naming instances in the shared store), the SEG and lesion list when sent,
and small JSON form fields.

Files are uploaded as ``multipart/form-data`` parts, zip archives accepted. A SEG among them is
taken as the series' segmentation; every other file must belong to one image series. A study
reference (form field ``study``: a :class:`StudyRef` as JSON, with one series) is read from the
store the service shares with the gateway, which is where the workflow keeps instances; the SEG
is then the one ``segmentation.seg_uri`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydicom.dataset import Dataset

from medgate_common.api.compute import ComputeSlots
from medgate_common.api.uploads import expand_zips, file_parts, group_series, one_series, read_form
from medgate_common.dicom.io import read_dataset
from medgate_common.errors import InputError, NotFoundError
from medgate_common.schemas.segmentation import SegmentationResult
from medgate_common.schemas.study import StudyRef
from medgate_common.storage import LocalStorage
from medgate_vlm.core.study import (
    EmptyStudyError,
    KeySlice,
    LabelMap,
    MissingSegmentationError,
    ReportSeries,
    key_slice,
    lesion_labels,
    slice_numbered,
)
from medgate_vlm.settings import VlmSettings

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Input:
    study_uid: str
    series_uid: str
    images: list[Dataset]
    seg: Dataset | None
    fields: dict[str, str]

    def model(self, name: str, schema: type[M]) -> M | None:
        """Form field ``name`` parsed as ``schema`` (None when absent)."""
        text = self.fields.get(name, "").strip()
        if not text:
            return None
        try:
            return schema.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or name
            raise InputError(f"form field {name!r} is not a valid {schema.__name__}: {where}: {first['msg']}") from None

    def segmentation(self, storage: LocalStorage) -> tuple[SegmentationResult, Dataset | None]:
        """The series' segmentation result (form field ``segmentation``) and its SEG."""
        result = self.model("segmentation", SegmentationResult)
        if result is None:
            raise MissingSegmentationError(
                "form field 'segmentation' (the seg service's SegmentationResult) is required"
            )
        if result.series_instance_uid != self.series_uid:
            raise MissingSegmentationError("the segmentation result is about another series")
        seg = self.seg
        if seg is None and result.seg_uri and result.lesions:
            try:
                seg = read_dataset(storage.get_bytes(result.seg_uri))
            except NotFoundError:
                raise MissingSegmentationError(
                    "the SEG that the segmentation result names is not in the store"
                ) from None
        return result, seg


async def read_input(request: Request, settings: VlmSettings, slots: ComputeSlots, storage: LocalStorage) -> Input:
    async with read_form(request, settings) as form:
        parts = await file_parts(form)
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    if parts:
        parts = await slots.run(partial(expand_zips, parts, settings))
        grouped = await slots.run(partial(group_series, parts))
        del parts
        segs = [s for s in grouped if str(s.datasets[0].get("Modality", "")).upper() == "SEG"]
        if len(segs) > 1 or (segs and len(segs[0].datasets) > 1):
            raise InputError("send at most one SEG, the segmentation of the series")
        images = one_series([s for s in grouped if all(s is not t for t in segs)], "a reasoning request")
        return Input(
            images.study_instance_uid,
            images.series_instance_uid,
            images.datasets,
            segs[0].datasets[0] if segs else None,
            fields,
        )
    reference = fields.get("study", "").strip()
    if not reference:
        raise EmptyStudyError("send the DICOM files of one series, or a study reference (form field 'study')")
    try:
        study = StudyRef.model_validate_json(reference)
    except ValidationError:
        raise InputError("form field 'study' is not a valid study reference (StudyRef JSON)") from None
    if not study.series or not any(s.instance_uris for s in study.series):
        raise EmptyStudyError("the study reference names no instances")
    if len(study.series) != 1:
        raise InputError(f"a reasoning request is about one series; the reference names {len(study.series)}")
    [series] = study.series

    def read() -> list[Dataset]:
        return [read_dataset(storage.get_bytes(uri)) for uri in series.instance_uris]

    return Input(study.study_instance_uid, series.series_instance_uid, await slots.run(read), None, fields)


def lesion_map(given: Input, series: ReportSeries, storage: LocalStorage) -> LabelMap | None:
    """The lesions on the series' grid when a segmentation result was sent (to pick the key slice)."""
    if not given.fields.get("segmentation", "").strip():
        return None
    result, seg = given.segmentation(storage)
    return lesion_labels(seg, series, [lesion.lesion_id for lesion in result.lesions])


def choose_slice(given: Input, series: ReportSeries, labels: LabelMap | None) -> KeySlice:
    """Form field ``instance_number`` when sent, else the key slice."""
    number = given.fields.get("instance_number", "").strip()
    if not number:
        return key_slice(labels, series.depth)
    if not number.lstrip("-").isdigit():
        raise InputError("form field 'instance_number' must be an integer")
    return slice_numbered(series, int(number))
