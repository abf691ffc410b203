"""Real public imaging files that ship offline, for decoding, geometry and robustness tests.

Sources: pydicom's bundled test files, the ``pydicom-data`` wheel (found through pydicom's
data-source entry point), nibabel's test data (a real EPI) and Debian's ``mricron-data``
(the Colin27 T1 brain with atlas label maps on the same grid). Nothing is downloaded: a
file that is not installed raises :class:`SampleDataMissingError`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from medgate_common.errors import NotFoundError

MRICRON_DIR = Path("/usr/share/mricron/templates")


class SampleDataMissingError(NotFoundError):
    code = "sample_data_missing"


def pydicom_file(name: str) -> Path:
    """A pydicom test file by name, from the bundled set or pydicom-data; never downloads."""
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name, download=False)
    except Exception as exc:  # pydicom raises ValueError/RuntimeError for unknown names
        raise SampleDataMissingError(f"pydicom test file {name} is not installed") from exc
    if found is None:
        raise SampleDataMissingError(f"pydicom test file {name} is not installed")
    return Path(str(found))


def pydicom_dir(relative: str) -> Path:
    """A folder inside pydicom's bundled test files (e.g. ``dicomdirtests/77654033/CT2``)."""
    spec = importlib.util.find_spec("pydicom")
    if spec is None or spec.origin is None:
        raise SampleDataMissingError("pydicom is not installed")
    path = Path(spec.origin).parent / "data" / "test_files" / relative
    if not path.is_dir():
        raise SampleDataMissingError(f"pydicom test folder {relative} is not installed")
    return path


def nibabel_file(name: str = "example4d.nii.gz") -> Path:
    spec = importlib.util.find_spec("nibabel")
    if spec is None or spec.origin is None:
        raise SampleDataMissingError("nibabel is not installed")
    path = Path(spec.origin).parent / "tests" / "data" / name
    if not path.is_file():
        raise SampleDataMissingError(f"nibabel test file {name} is not installed")
    return path


def mricron_file(name: str = "ch2.nii.gz") -> Path:
    """A template or atlas from Debian's mricron-data (``ch2``, ``aal``, ``brodmann``, ...)."""
    path = MRICRON_DIR / name
    if not path.is_file():
        raise SampleDataMissingError(f"{name} not found; install the Debian package mricron-data")
    return path


CATALOGUE: dict[str, tuple[str, str]] = {
    "CT_small.dcm": ("pydicom", "one 128x128 CT slice, explicit little endian"),
    "MR_small.dcm": ("pydicom", "64x64 MR, explicit little endian (also RLE, JPEG-LS, J2K variants)"),
    "emri_small.dcm": ("pydicom-data", "enhanced MR, 10 frames of 64x64"),
    "693_J2KI.dcm": ("pydicom", "512x512 head CT in JPEG 2000, lossy at 339:1"),
    "693_J2KR.dcm": ("pydicom", "the same head CT, lossless JPEG 2000 (the original pixels)"),
    "J2K_pixelrep_mismatch.dcm": ("pydicom", "512x512 head CT (skull base) in JPEG 2000"),
    "explicit_VR-UN.dcm": ("pydicom-data", "512x512 abdominal CT in JPEG 2000"),
    "eCT_Supplemental.dcm": ("pydicom-data", "enhanced CT, 2 frames of a 512x512 head perfusion map (rCBF)"),
    "bad_sequence.dcm": ("pydicom-data", "512x512 neck CT, small field of view"),
    "MR-SIEMENS-DICOM-WithOverlays.dcm": ("pydicom-data", "484x484 abdominal MR with overlay planes"),
    "MR2_UNCI.dcm": ("pydicom-data", "1024x1024 shoulder MR, once lossy compressed (18:1)"),
    "example4d.nii.gz": ("nibabel", "real EPI, 128x96x24x2"),
    "ch2.nii.gz": ("mricron-data", "Colin27 T1 brain 181x217x181, 1 mm"),
    "aal.nii.gz": ("mricron-data", "AAL atlas labels on the ch2 grid"),
    "inia19-t1-brain.nii.gz": ("mricron-data", "INIA19 macaque T1 template, 0.5 mm"),
}


def locate(name: str) -> Path:
    source = CATALOGUE.get(name, ("pydicom", ""))[0]
    if source == "nibabel":
        return nibabel_file(name)
    if source == "mricron-data":
        return mricron_file(name)
    return pydicom_file(name)


def samples() -> None:
    """List the real sample files MedGate's tests use and whether each is installed."""
    for name, (source, what) in CATALOGUE.items():
        try:
            where = str(locate(name))
        except SampleDataMissingError:
            where = "MISSING"
        typer.echo(f"{name:26} {source:13} {what}\n{'':26} {where}")


def register(app: typer.Typer) -> None:
    app.command("samples")(samples)
