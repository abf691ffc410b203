"""``medgate bench ingest``: MedGate against Orthanc on the same machine, same data.

Both servers run as their own processes on loopback (MedGate as ``medgate gateway serve``
with its DICOM listener, Orthanc from the Debian package with the DICOMweb plugin) and
both receive, byte for byte, the same synthetic CT series through the same client code
(:mod:`medgate_gateway.bench.senders`). Every run writes the series under fresh UIDs, so
no server is ever timed on duplicates, and every run is checked against the server's own
instance count. Within a repeat the server that goes first alternates, so slow drift from
other work on the machine falls on both, and ``sync`` runs before each timed run, so no run
pays for flushing the page cache that the previous one (maybe the other server) dirtied.
Besides instances/s it reports each server's own CPU time per instance (from ``/proc``),
which says how much of the machine a server needs, whatever the client and the other
processes on the two cores were doing.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shlex
import shutil
import statistics
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from medgate_gateway import __version__
from medgate_gateway.bench.medgate import MedgateServer, run_medgate
from medgate_gateway.bench.orthanc import Orthanc, run_orthanc
from medgate_gateway.bench.senders import (
    BenchError,
    DicomTarget,
    SeriesSource,
    cpu_seconds,
    find_pid,
    rest_requests,
    send_cstore,
    send_http,
    stow_requests,
)

MEASUREMENTS = ("cstore-1", "cstore-n", "stow", "single")
#: (label, MedGate measurement, Orthanc measurement)
COMPARISONS = (
    ("C-STORE, 1 association", "cstore-1", "cstore-1"),
    ("C-STORE, {assoc} associations", "cstore-n", "cstore-n"),
    ("STOW {batch}/req vs Orthanc STOW {batch}/req", "stow", "stow"),
    ("STOW {batch}/req vs Orthanc REST 1/req", "stow", "single"),
    ("STOW 1/req vs Orthanc REST 1/req", "single", "single"),
)


@dataclass(frozen=True)
class BenchConfig:
    instances: int = 200
    matrix: int = 512
    repeats: int = 3
    batch: int = 50
    associations: int = 4
    warmup: int = 10
    seed: int = 11
    database_url: str = ""  # MedGate's; empty: SQLite in its home, like Orthanc's own index
    only: tuple[str, ...] = MEASUREMENTS
    wrap_medgate: tuple[str, ...] = ()  # e.g. py-spy record -o prof.svg --
    dicom_workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # like Orthanc, use every core


@dataclass(frozen=True)
class Endpoint:
    """What the senders need to know about one server, and how to ask it what it holds."""

    name: str
    dicom: DicomTarget
    stow_url: str
    single_url: str
    single_is_stow: bool
    headers: dict[str, str]
    count: Callable[[], int]
    pid: int | None  # for its CPU time; None where /proc cannot tell


def _endpoints(medgate: MedgateServer, orthanc: Orthanc) -> list[Endpoint]:
    return [
        Endpoint(
            "medgate",
            DicomTarget("127.0.0.1", medgate.dicom_port, medgate.ae_title),
            medgate.http_url + "/dicomweb/studies",
            medgate.http_url + "/dicomweb/studies",
            True,
            {"Authorization": f"Bearer {medgate.api_key}"},
            medgate.count_instances,
            medgate.pid,
        ),
        Endpoint(
            "orthanc",
            DicomTarget("127.0.0.1", orthanc.dicom_port, orthanc.ae_title),
            orthanc.http_url + "/dicom-web/studies",
            orthanc.http_url + "/instances",
            False,
            {},
            lambda: int(orthanc.get("/statistics")["CountInstances"]),
            find_pid(str(orthanc.workdir / "orthanc.json")),
        ),
    ]


def _send(cfg: BenchConfig, ep: Endpoint, key: str, files: list[Path], client: httpx.Client) -> float:
    if key.startswith("cstore"):
        return send_cstore(files, ep.dicom, 1 if key == "cstore-1" else cfg.associations)
    payloads = [f.read_bytes() for f in files]
    if key == "stow":
        return send_http(client, ep.stow_url, stow_requests(payloads, cfg.batch), stow=True, headers=ep.headers)
    requests = stow_requests(payloads, 1) if ep.single_is_stow else rest_requests(payloads)
    return send_http(client, ep.single_url, requests, stow=ep.single_is_stow, headers=ep.headers)


def run_bench(
    cfg: BenchConfig,
    medgate: MedgateServer,
    orthanc: Orthanc,
    source: SeriesSource,
    scratch: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Time every selected path ``cfg.repeats`` times on both servers; return the results."""
    loadavg_start = os.getloadavg()
    endpoints = _endpoints(medgate, orthanc)
    keys = [k for k in MEASUREMENTS if k in cfg.only]
    nonce = secrets.token_hex(4)
    seconds: dict[str, dict[str, list[float]]] = {ep.name: {k: [] for k in keys} for ep in endpoints}
    cpu: dict[str, dict[str, list[float]]] = {ep.name: {k: [] for k in keys} for ep in endpoints}
    sent = {ep.name: 0 for ep in endpoints}
    task = progress.add_task("ingest", total=(cfg.repeats + 1) * len(keys) * 2) if progress else None
    with httpx.Client(timeout=600) as client:
        for rep in range(-1, cfg.repeats):  # -1: warm-up, not timed
            for key in keys:
                for ep in endpoints if rep % 2 == 0 else endpoints[::-1]:
                    what = "warm-up" if rep < 0 else f"repeat {rep + 1}/{cfg.repeats}"
                    if progress is not None and task is not None:
                        progress.update(task, description=f"{ep.name:8} {key:9} {what}")
                    tag = f"{nonce}-{ep.name}-{key}-{rep}"
                    files = source.write(tag, scratch / tag, cfg.warmup if rep < 0 else None)
                    os.sync()  # start clean: no run pays for the write-back of the one before
                    before, cpu_before = ep.count(), cpu_seconds(ep.pid)
                    elapsed = _send(cfg, ep, key, files, client)
                    cpu_after = cpu_seconds(ep.pid)
                    stored = ep.count() - before
                    shutil.rmtree(scratch / tag)
                    if stored != len(files):
                        raise BenchError(f"{ep.name} {key}: sent {len(files)} instances, it indexed {stored}")
                    sent[ep.name] += len(files)
                    if rep >= 0:
                        seconds[ep.name][key].append(elapsed)
                        if cpu_before is not None and cpu_after is not None:
                            cpu[ep.name][key].append((cpu_after - cpu_before) / len(files) * 1000)
                    if progress is not None and task is not None:
                        progress.advance(task)
    indexed = {ep.name: ep.count() for ep in endpoints}
    return _results(cfg, keys, seconds, cpu, sent, indexed, orthanc, loadavg_start)


def _stats(n: int, secs: list[float], cpu_ms: list[float]) -> dict[str, Any]:
    rates = [n / s for s in secs]
    return {
        "seconds": secs,
        "instances_per_s": rates,
        "mean": statistics.mean(rates),
        "std": statistics.stdev(rates) if len(rates) > 1 else 0.0,
        "server_cpu_ms_per_instance": cpu_ms,
        "server_cpu_ms_mean": statistics.mean(cpu_ms) if cpu_ms else None,
    }


def _results(
    cfg: BenchConfig,
    keys: list[str],
    seconds: dict[str, dict[str, list[float]]],
    cpu: dict[str, dict[str, list[float]]],
    sent: dict[str, int],
    indexed: dict[str, int],
    orthanc: Orthanc,
    loadavg_start: tuple[float, float, float],
) -> dict[str, Any]:
    measured = {
        name: {k: _stats(cfg.instances, s, cpu[name][k]) for k, s in by_key.items()} for name, by_key in seconds.items()
    }
    comparisons = []
    for label, mg_key, or_key in COMPARISONS:
        if mg_key in keys and or_key in keys:
            mg, orth = measured["medgate"][mg_key], measured["orthanc"][or_key]
            comparisons.append(
                {
                    "path": label.format(assoc=cfg.associations, batch=cfg.batch),
                    "medgate": mg_key,
                    "orthanc": or_key,
                    "medgate_mean": mg["mean"],
                    "medgate_std": mg["std"],
                    "orthanc_mean": orth["mean"],
                    "orthanc_std": orth["std"],
                    "ratio": mg["mean"] / orth["mean"],
                    "medgate_cpu_ms": mg["server_cpu_ms_mean"],
                    "orthanc_cpu_ms": orth["server_cpu_ms_mean"],
                }
            )
    system = orthanc.get("/system")
    return {
        "config": {k: v for k, v in asdict(cfg).items() if k != "wrap_medgate"},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg(),
        },
        "versions": {"medgate_gateway": __version__, "orthanc": system.get("Version", "")},
        "measurements": measured,
        "comparisons": comparisons,
        "instances_sent": sent,
        "instances_indexed": indexed,
    }


def render(results: dict[str, Any], console: Console) -> None:
    cfg = results["config"]
    table = Table(
        title=f"Ingest, {cfg['instances']} CT instances {cfg['matrix']}x{cfg['matrix']}, "
        f"instances/s (mean ± std of {cfg['repeats']})"
    )
    table.add_column("path")
    for col in ("MedGate", "Orthanc", "MedGate/Orthanc", "CPU ms/inst MedGate", "CPU ms/inst Orthanc"):
        table.add_column(col, justify="right")

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    for row in results["comparisons"]:
        table.add_row(
            row["path"],
            f"{row['medgate_mean']:.1f} ± {row['medgate_std']:.1f}",
            f"{row['orthanc_mean']:.1f} ± {row['orthanc_std']:.1f}",
            f"{row['ratio']:.2f}",
            ms(row["medgate_cpu_ms"]),
            ms(row["orthanc_cpu_ms"]),
        )
    console.print(table)
    m, v = results["machine"], results["versions"]
    console.print(
        f"{m['cpus']} CPUs, {m['platform']}, Python {m['python']}; MedGate {v['medgate_gateway']}, "
        f"Orthanc {v['orthanc']}; 1-min load average {m['loadavg_start'][0]:.2f} at start, "
        f"{m['loadavg_end'][0]:.2f} at end"
    )


def ingest(
    instances: int = typer.Option(200, "--instances", help="Instances in the series"),
    matrix: int = typer.Option(512, "--matrix", help="Rows and columns of each CT image"),
    repeats: int = typer.Option(3, "--repeats", min=1),
    batch: int = typer.Option(50, "--batch", min=1, help="Instances per STOW-RS request"),
    associations: int = typer.Option(4, "--associations", min=2, help="Parallel C-STORE associations"),
    warmup: int = typer.Option(10, "--warmup", min=1, help="Instances sent untimed per path first"),
    database_url: str = typer.Option("", "--database-url", help="MedGate's database (default: SQLite)"),
    only: str = typer.Option(",".join(MEASUREMENTS), "--only", help="Comma-separated subset of the paths"),
    wrap_medgate: str = typer.Option("", "--wrap-medgate", help="Prefix for the MedGate command (a profiler)"),
    dicom_workers: int = typer.Option(
        os.cpu_count() or 1, "--dicom-workers", min=1, help="MedGate listener processes (default: one per core)"
    ),
    workdir: Path | None = typer.Option(None, "--workdir", help="Keep servers' data and logs here"),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the results as JSON here"),
) -> None:
    """Ingest throughput of MedGate and Orthanc: C-STORE (1 and N associations) and HTTP."""
    chosen = tuple(k.strip() for k in only.split(",") if k.strip())
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        raise typer.BadParameter(f"unknown paths {sorted(unknown)}; choose from {list(MEASUREMENTS)}")
    cfg = BenchConfig(
        instances, matrix, repeats, batch, associations, min(warmup, instances), only=chosen,
        database_url=database_url, wrap_medgate=tuple(shlex.split(wrap_medgate)), dicom_workers=dicom_workers,
    )  # fmt: skip
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        raise typer.BadParameter(f"{workdir} is not empty; the servers must start empty")
    console = Console(stderr=True)
    with ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medgate-bench-")))
        with console.status(f"generating a {instances}-slice {matrix}x{matrix} CT series"):
            source = SeriesSource.generate(instances=instances, matrix=matrix, seed=cfg.seed)
        orthanc = stack.enter_context(run_orthanc(root / "orthanc", ae_title="ORTHANC"))
        medgate = stack.enter_context(
            run_medgate(
                root / "medgate", database_url=cfg.database_url, wrap=cfg.wrap_medgate, dicom_workers=cfg.dicom_workers
            )
        )
        with Progress(console=console, transient=True) as progress:
            results = run_bench(cfg, medgate, orthanc, source, root / "series", progress)
    render(results, Console(width=max(Console().width, 140)))  # one line per path, also when piped
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")


bench_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
bench_app.command("ingest")(ingest)


@bench_app.callback()
def _bench() -> None:
    """Benchmarks against a peer, run on this machine; results belong in docs/results/."""


def register_bench(bench: typer.Typer) -> None:
    """Add ``ingest`` to a ``medgate bench`` group that several packages share."""
    bench.command("ingest")(ingest)
