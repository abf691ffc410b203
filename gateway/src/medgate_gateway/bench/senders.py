"""The client side of ``medgate bench ingest``: one series, three ways of sending it.

Every sender is used unchanged for MedGate and for Orthanc, so a difference in the numbers
is a difference between the servers. C-STORE goes through dcmtk's ``storescu`` (C, its own
process, ``TCP_NODELAY=1``) so that the client costs little of the two cores the servers
share with it; the HTTP senders are one keep-alive httpx client in the bench process, with
every request body built before the clock starts.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from medgate_common.errors import ConfigError, MedgateError
from medgate_common.synth import generate_study
from medgate_common.synth.dicom_writer import SeriesHeader, derived_uid, write_series
from medgate_gateway.dicomweb.multipart import multipart_chunks, new_boundary

STORESCU = Path("/usr/bin/storescu")  # dcmtk's; the venv's pynetdicom script of that name shadows it
CALLING_AE = "MGBENCH"


class BenchError(MedgateError):
    """A benchmark run failed or a server did not store what it was sent."""

    code = "bench_failed"


@dataclass(frozen=True)
class SeriesSource:
    """One synthetic series held in memory; each run writes it again under fresh UIDs."""

    header: SeriesHeader
    stored: npt.NDArray[np.generic]
    origin: tuple[float, float, float]

    @classmethod
    def generate(cls, *, instances: int, matrix: int, seed: int) -> SeriesSource:
        study = generate_study("CT", seed=seed, index=0, slices=instances, matrix=matrix, lesion_count=0)
        return cls(study.header, study.stored, study.grid.origin)

    def write(self, tag: str, out_dir: Path, count: int | None = None) -> list[Path]:
        """The same pixels and headers under a new study, series and instance UIDs."""
        header = dataclasses.replace(
            self.header,
            study_uid=derived_uid("medgate-bench", tag, "study"),
            series_uid=derived_uid("medgate-bench", tag, "series"),
            frame_of_reference_uid=derived_uid("medgate-bench", tag, "for"),
        )
        stored = self.stored if count is None else self.stored[:count]
        return write_series(header, stored, self.origin, out_dir)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of a process and its live descendants (Linux ``/proc``); None if unknown.

    Descendants count because a server may spread its work over processes (MedGate's
    listener workers); Orthanc runs in one.
    """
    if pid is None:
        return None
    tree: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(proc.name))
        ticks[int(proc.name)] = int(fields[11]) + int(fields[12])
    if pid not in ticks:
        return None
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo.extend(tree.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def find_pid(fragment: str, *, under: int | None = None) -> int | None:
    """The process whose command line contains ``fragment``, ``under`` or below it.

    Where several match (a wrapper such as a profiler repeats the command it starts), the
    deepest one is the process itself.
    """
    parents: dict[int, int] = {}
    found: list[int] = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if fragment in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue

    def lineage(pid: int) -> list[int]:
        chain = [pid]
        while chain[-1] in parents and parents[chain[-1]] > 1 and len(chain) < 64:
            chain.append(parents[chain[-1]])
        return chain

    matches = [(len(lineage(pid)), pid) for pid in found if under is None or under in lineage(pid)]
    return max(matches)[1] if matches else None


@dataclass(frozen=True)
class DicomTarget:
    host: str
    port: int
    ae_title: str


def storescu_available() -> bool:
    return STORESCU.is_file() and os.access(STORESCU, os.X_OK)


def _split(items: Sequence[Path], parts: int) -> list[list[Path]]:
    """Contiguous, nearly equal chunks (a modality sends a series in order)."""
    n = len(items)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [list(items[bounds[i] : bounds[i + 1]]) for i in range(parts) if bounds[i] < bounds[i + 1]]


def send_cstore(files: Sequence[Path], target: DicomTarget, associations: int = 1) -> float:
    """C-STORE ``files`` over ``associations`` concurrent storescu processes; seconds taken."""
    if not storescu_available():
        raise ConfigError("dcmtk storescu not found at /usr/bin/storescu; run scripts/setup.sh")
    env = {**os.environ, "TCP_NODELAY": "1"}
    base = [str(STORESCU), "-R", "-aet", CALLING_AE, "-aec", target.ae_title, "-to", "30"]
    base += ["-td", "120", target.host, str(target.port)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen([*base, *map(str, chunk)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        for chunk in _split(files, associations)
    ]
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.perf_counter() - started
    for proc, err in zip(procs, errors, strict=True):
        if proc.returncode != 0 or b"E: " in err:
            tail = err.decode(errors="replace")[-400:]
            raise BenchError(f"storescu to {target.ae_title} failed (rc {proc.returncode}): {tail}")
    return elapsed


@dataclass(frozen=True)
class HttpRequest:
    body: bytes
    headers: dict[str, str]
    instances: int


def stow_requests(payloads: Sequence[bytes], batch: int) -> list[HttpRequest]:
    """STOW-RS bodies of ``batch`` instances each (multipart/related; type=application/dicom)."""
    requests = []
    for i in range(0, len(payloads), batch):
        chunk = payloads[i : i + batch]
        boundary = new_boundary()
        body = b"".join(multipart_chunks((("application/dicom", p) for p in chunk), boundary))
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
        requests.append(HttpRequest(body, headers, len(chunk)))
    return requests


def rest_requests(payloads: Sequence[bytes]) -> list[HttpRequest]:
    """Orthanc's REST upload: one Part 10 file per ``POST /instances``."""
    return [HttpRequest(p, {"Content-Type": "application/dicom"}, 1) for p in payloads]


def _check_stow(resp: httpx.Response, expected: int) -> None:
    if resp.status_code != 200:
        raise BenchError(f"STOW-RS answered {resp.status_code}: {resp.text[:400]}")
    body: dict[str, Any] = resp.json()
    stored = len(body.get("00081199", {}).get("Value", []))
    failed = len(body.get("00081198", {}).get("Value", []))
    if failed or stored != expected:
        raise BenchError(f"STOW-RS stored {stored} of {expected} instances ({failed} failed)")


def _check_rest(resp: httpx.Response, expected: int) -> None:
    if resp.status_code != 200:
        raise BenchError(f"POST /instances answered {resp.status_code}: {resp.text[:400]}")
    status = resp.json().get("Status")
    if status != "Success":
        raise BenchError(f"POST /instances answered Status={status!r} (a duplicate is not a fresh store)")


def send_http(
    client: httpx.Client, url: str, requests: Sequence[HttpRequest], *, stow: bool, headers: dict[str, str]
) -> float:
    """POST every request in order over one keep-alive connection; seconds taken."""
    check = _check_stow if stow else _check_rest
    started = time.perf_counter()
    for req in requests:
        check(client.post(url, content=req.body, headers={**headers, **req.headers}), req.instances)
    return time.perf_counter() - started
