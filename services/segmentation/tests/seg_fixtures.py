"""DICOM series and stand-in models for the segmentation tests.

Series are real files: written by ``medgate_common.synth``'s CT writer (the same modules a
scanner export has), then changed the way bad uploads look in practice (a slice missing, a
tilted gantry, an SR). The stand-in model is a real ONNX graph run by ONNX Runtime: lesion
probability = sigmoid(k · (input - level)), i.e. "brighter than ``level_hu``", so that a
test knows exactly which voxels it must find. Tests of what the trained model finds use
the committed weights instead.

Shared by services/segmentation/tests and tests/e2e (the root conftest puts this folder on sys.path).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pydicom
from onnx import TensorProto, helper
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from medgate_common.storage import sha256_file
from medgate_common.synth import generate_study
from medgate_common.synth.dicom_writer import write_series
from medgate_seg.core.model import CARD_FILE, MODEL_FILE

Series = list[bytes]
WINDOW = (-160.0, 240.0)
#: Phantom: 24 slices of 48x48 at 2.5 mm x 1.25 mm (not the model's 3 mm: resampled both ways).
SPACING = (2.5, 1.25, 1.25)
SHAPE = (24, 48, 48)
#: Two bright spheres, (centre z, y, x in mm from the first voxel, radius mm).
BLOBS = [((25.0, 30.0, 28.0), 8.0), ((48.0, 13.0, 45.0), 6.0)]


def card(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "bright-spot",
        "version": "0.0.1",
        "sha256": "0" * 64,
        "input": "image",
        "output": "probabilities",
        "spacing_mm": [3.0, 3.0, 3.0],
        "patch": [16, 32, 32],
        "window_hu": list(WINDOW),
        "modalities": ["CT"],
        "classes": ["background", "lesion"],
        "threshold": 0.5,
        "min_lesion_voxels": 4,
    }
    return {**base, **changes}


def bright_spot_model(folder: Path, level_hu: float = 130.0, **card_changes: object) -> Path:
    """A folder with ``lesion_seg.onnx`` (voxels above ``level_hu`` are lesion) and its card."""
    folder.mkdir(parents=True, exist_ok=True)
    level = (level_hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0])
    dims = ["N", 1, "D", "H", "W"]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2, "D", "H", "W"])
    consts = [
        helper.make_tensor("level", TensorProto.FLOAT, [], [level]),
        helper.make_tensor("half_gain", TensorProto.FLOAT, [], [20.0]),
    ]
    nodes = [
        helper.make_node("Sub", ["image", "level"], ["centred"]),
        helper.make_node("Mul", ["centred", "half_gain"], ["up"]),
        helper.make_node("Neg", ["up"], ["down"]),
        helper.make_node("Concat", ["down", "up"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(nodes, "bright_spot", [x], [y], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, folder / MODEL_FILE)
    meta = card(**card_changes)
    meta["sha256"] = sha256_file(folder / MODEL_FILE)
    (folder / CARD_FILE).write_text(json.dumps(meta, indent=2))
    return folder


def blob_phantom(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    blobs: list[tuple[tuple[float, float, float], float]],
) -> npt.NDArray[np.float32]:
    """Soft tissue (40 HU) with bright spheres (220 HU): ``blobs`` are (centre z,y,x mm from
    the first voxel, radius mm)."""
    grids = np.meshgrid(*(np.arange(n) * s for n, s in zip(shape, spacing, strict=True)), indexing="ij")
    hu = np.full(shape, 40.0, dtype=np.float32)
    for centre, radius in blobs:
        inside = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2
        hu[inside] = 220.0
    return hu


def write_ct(hu: npt.NDArray[np.floating], spacing: tuple[float, float, float], out: Path, seed: int = 0) -> list[Path]:
    """``hu`` ([slice, row, col], slice 0 inferior) as a CT series at ``spacing`` (slice, row, col)."""
    header = generate_study("CT", seed=seed, index=0, slices=2, matrix=16, lesion_count=0).header
    header = dataclasses.replace(
        header,
        pixel_spacing=(spacing[1], spacing[2]),
        slice_spacing=spacing[0],
        rescale_intercept=-1024.0,
        signed=False,
    )
    stored = np.clip(np.rint(np.asarray(hu) + 1024.0), 0, 4095).astype(np.uint16)
    origin = (-(hu.shape[2] - 1) * spacing[2] / 2, -(hu.shape[1] - 1) * spacing[1] / 2, 0.0)
    return write_series(header, stored, origin, out)


def read_all(paths: list[Path]) -> Series:
    return [p.read_bytes() for p in paths]


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def datasets(series: Series) -> list[Dataset]:
    return [pydicom.dcmread(io.BytesIO(data)) for data in series]


def remake(series: Series, change: Callable[[int, Dataset], None]) -> Series:
    """The same instances under a new series UID, each changed by ``change(position, ds)``."""
    uid = generate_uid()
    out = []
    for number, data in enumerate(series):
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid, str(number)])
        change(number, ds)
        out.append(to_bytes(ds))
    return out


def z_of(ds: Dataset) -> float:
    return float(ds.ImagePositionPatient[2])


def tilt(degrees: float) -> Callable[[int, Dataset], None]:
    """Slices displaced along y by z·tan(angle), as a tilted gantry acquires them."""

    def change(number: int, ds: Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + z * float(np.tan(np.radians(degrees))), z]
        ds.GantryDetectorTilt = degrees

    return change


def stretch_after(index: int, extra_mm: float) -> Callable[[int, Dataset], None]:
    """Every slice from file ``index`` on moved by ``extra_mm`` down (files go head first)."""

    def change(number: int, ds: Dataset) -> None:
        if number >= index:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [x, y, z - extra_mm]

    return change


def as_modality(name: str) -> Callable[[int, Dataset], None]:
    def change(number: int, ds: Dataset) -> None:
        ds.Modality = name

    return change


def without_pixels(number: int, ds: Dataset) -> None:
    del ds.PixelData


def write_nifti_as_mr(
    data_ijk: npt.NDArray[np.generic], affine_ras: npt.NDArray[np.float64], slices: range, out: Path
) -> list[Path]:
    """Axial slices ``slices`` of a NIfTI volume as an MR series with the volume's own geometry.

    Voxel (i, j, k) becomes column i, row j of slice k; each file's position and orientation
    come from the NIfTI affine turned to LPS, so that the series lies in patient space where
    the NIfTI does (for the mricron templates: rows and columns run right-to-left and
    anterior-to-posterior flipped, a real orientation other than the identity).
    """
    from medgate_common.dicom.geometry import lps_to_ras

    lps = lps_to_ras(affine_ras)  # the flip is its own inverse
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    header = generate_study("MR", seed=0, index=0, slices=2, matrix=16, lesion_count=0).header
    header = dataclasses.replace(
        header,
        pixel_spacing=(float(spacing[1]), float(spacing[0])),
        slice_spacing=float(spacing[2]),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
    )
    stored = np.ascontiguousarray(np.asarray(data_ijk)[:, :, slices].transpose(2, 1, 0)).astype(np.uint16)
    paths = write_series(header, stored, (0.0, 0.0, 0.0), out)
    orientation = [*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1])]
    for number, path in enumerate(paths):
        k = slices[len(paths) - 1 - number]  # files are written head first
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.SliceLocation = f"{float(ds.ImagePositionPatient[2]):.6f}"
        ds.save_as(path, enforce_file_format=True)
    return paths
