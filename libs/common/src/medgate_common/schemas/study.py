"""References to studies and series, as handed from the gateway to the services."""

from __future__ import annotations

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel


class SeriesRef(WireModel):
    series_instance_uid: DicomUID
    modality: str = Field(min_length=2, max_length=16)
    frame_of_reference_uid: DicomUID | None = None
    series_description: str = ""
    body_part: str = ""
    instance_count: int = Field(ge=0)
    # Storage URIs of the instances, in no particular order; readers sort by geometry.
    instance_uris: tuple[str, ...] = ()


class StudyRef(WireModel):
    """What a service needs to find a study: UIDs and storage URIs, never pixels or names."""

    study_instance_uid: DicomUID
    series: tuple[SeriesRef, ...] = ()
    calling_ae: str | None = None
    # An opaque pseudonymous key the gateway can map back; never the PatientID itself.
    patient_key: str | None = None
