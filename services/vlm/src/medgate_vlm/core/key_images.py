"""Key images for the PACS: a source slice with the lesion outlines (and optionally the VQA
model's grounding heatmap) burned in, as an RGB Secondary Capture (highdicom).

The picture follows the seg service's PNG overlays: the slice through its window, enlarged by
a whole factor until it is at least 256 pixels wide, each lesion outlined one pixel wide in
its own colour and numbered. The heatmap, values in [0, 1] on the slice's grid, is blended
under the outlines with a black-red-yellow-white ramp whose opacity grows with the value, so
a cold map leaves the slice untouched. Text never covers an outline: it is drawn on its own
layer and laid only where no outline is.

AI-generated and linked: ImageType DERIVED\\SECONDARY, Burned In Annotation YES, "AI-GENERATED"
written in the picture and in the series description, Manufacturer MedGate with the model
as Manufacturer Model Name and its version as Software Versions. Patient, study and Frame of
Reference UIDs are the source's; the source slice (and frame) is the Source Image Sequence
item, purpose "Source image for image processing operation"; Pixel Spacing is the source's
divided by the enlargement.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from medgate_common.dicom.outlines import colour_of, draw_outlines, enlargement, number_positions
from medgate_common.dicom.pixels import apply_window, to_uint8
from medgate_common.errors import InputError
from medgate_common.schemas.models import ModelInfo

MANUFACTURER = "MedGate"
SERIES_NUMBER = 9103
SERIES_DESCRIPTION = "AI key images (MedGate, AI-GENERATED, not reviewed)"
MARK = "AI-GENERATED - not reviewed"
HEAT_OPACITY = 0.6
RGBArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Rendering:
    """The RGB picture and the whole factor by which the slice was enlarged."""

    rgb: RGBArray
    scale: int


def _heat(rgb: RGBArray, heatmap: npt.NDArray[np.floating]) -> RGBArray:
    value = heatmap.astype(np.float32)[..., np.newaxis]
    ramp = np.clip(np.concatenate([3 * value, 3 * value - 1, 3 * value - 2], axis=2), 0.0, 1.0) * 255.0
    alpha = HEAT_OPACITY * value
    blended: RGBArray = np.round(rgb * (1.0 - alpha) + ramp * alpha).astype(np.uint8)
    return blended


def render(
    image: npt.NDArray[np.floating],
    labels: npt.NDArray[np.integer],
    window: tuple[float, float],
    caption: str,
    heatmap: npt.NDArray[np.floating] | None = None,
) -> Rendering:
    """One slice (output units, e.g. HU) with ``labels`` (k = lesion k) outlined; ``window`` is
    (centre, width)."""
    if image.ndim != 2 or labels.shape != image.shape:
        raise InputError(
            f"a key image needs a 2-D slice and a lesion map of its shape, got {image.shape}, {labels.shape}"
        )
    if heatmap is not None:
        if heatmap.shape != image.shape:
            raise InputError(f"the heatmap is {heatmap.shape}, the slice {image.shape}")
        if not np.all(np.isfinite(heatmap)) or heatmap.min() < 0.0 or heatmap.max() > 1.0:
            raise InputError("heatmap values must be finite and within [0, 1]")
    scale = enlargement(image.shape[1])
    block = np.ones((scale, scale))
    grey = to_uint8(apply_window(np.kron(image, block), window[0], max(window[1], 1.0)))
    big = np.kron(labels, block.astype(labels.dtype))
    rgb: RGBArray = np.repeat(grey[..., np.newaxis], 3, axis=2)
    if heatmap is not None:
        rgb = _heat(rgb, np.kron(heatmap, block))
    outline = draw_outlines(rgb, big)
    text = Image.new("RGB", (rgb.shape[1], rgb.shape[0]))
    draw = ImageDraw.Draw(text)
    for lesion_id, position in number_positions(big, text.width):
        draw.text(position, str(lesion_id), fill=colour_of(lesion_id))
    draw.text((4, 4), caption, fill=(255, 255, 255))
    draw.text((4, text.height - 14), MARK, fill=(255, 255, 0))
    layer = np.asarray(text)
    written = layer.any(axis=2) & ~outline
    rgb[written] = layer[written]
    return Rendering(rgb, scale)


def _letter(direction: Sequence[float]) -> str:
    """The patient direction a row or column cosine points to most (PS3.3 C.7.6.1.1.1)."""
    axis = int(np.argmax(np.abs(direction)))
    return ("LR", "PA", "HF")[axis][0 if direction[axis] > 0 else 1]


def _plane(source: Dataset, keyword: str, sequence: str, default: list[float]) -> list[float]:
    """A plane attribute of a single-frame image, or of an enhanced multi-frame's shared groups."""
    if keyword in source:
        return [float(v) for v in source[keyword].value]
    for shared in source.get("SharedFunctionalGroupsSequence", []):
        for item in shared.get(sequence, []):
            if keyword in item:
                return [float(v) for v in item[keyword].value]
    return default


def _source_item(source: Dataset, frame_number: int | None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if frame_number is not None:
        item.ReferencedFrameNumber = frame_number
    purpose = hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    item.PurposeOfReferenceCodeSequence = [purpose]
    return item


def build_key_image(
    source: Dataset,
    rendering: Rendering,
    model: ModelInfo,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    instance_number: int,
    frame_number: int | None = None,
    description: str = "source slice with AI lesion outlines",
) -> hd.sc.SCImage:
    """The Secondary Capture of ``rendering``, made from ``source`` (the slice it shows)."""
    orientation = _plane(source, "ImageOrientationPatient", "PlaneOrientationSequence", [1, 0, 0, 0, 1, 0])
    spacing = [v / rendering.scale for v in _plane(source, "PixelSpacing", "PixelMeasuresSequence", [1.0, 1.0])]
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=rendering.rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_instance_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        pixel_spacing=(spacing[0], spacing[1]),  # type: ignore[arg-type]  # typed as ints, written as DS
        patient_orientation=(_letter(orientation[:3]), _letter(orientation[3:])),
        transfer_syntax_uid=hd.UID("1.2.840.10008.1.2.1"),
        series_description=SERIES_DESCRIPTION,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=model.sha256[:16],
    )
    sc.BurnedInAnnotation = "YES"
    sc.RecognizableVisualFeatures = "NO"
    sc.ImageComments = f"{MARK}: {description}"
    sc.DerivationDescription = f"{description}, by {model.name} {model.version}"
    sc.SourceImageSequence = [_source_item(source, frame_number)]
    # Laterality (General Series, 2C) is needed for a paired or an unnamed body part: the
    # source's, or empty (= unknown) when the source names neither
    if "BodyPartExamined" in source:
        sc.BodyPartExamined = source.BodyPartExamined
    if "Laterality" in source or "BodyPartExamined" not in source:
        sc.Laterality = source.get("Laterality", "")
    if "FrameOfReferenceUID" in source:
        # not in the SC IOD (dciodvfy: standard extended SOP class), kept for the linkage a viewer uses
        sc.FrameOfReferenceUID = source.FrameOfReferenceUID
    return sc


def sc_bytes(sc: hd.sc.SCImage) -> bytes:
    buffer = io.BytesIO()
    sc.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
