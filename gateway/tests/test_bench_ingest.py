"""``medgate bench ingest`` on a tiny series, against the real servers it compares.

Orthanc (the Debian package) and MedGate (``medgate gateway serve`` with its listener) run
as their own processes on loopback, C-STORE goes through dcmtk's storescu, exactly as in a
real benchmark run; only the series is small (8 instances of 64x64) so this takes seconds.
The counts are checked against what each server indexed, asked independently of the bench:
Orthanc's ``/statistics`` and MedGate's SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgate_gateway.bench.ingest import MEASUREMENTS, BenchConfig, bench_app, run_bench
from medgate_gateway.bench.medgate import run_medgate
from medgate_gateway.bench.orthanc import DICOMWEB_PLUGIN, run_orthanc
from medgate_gateway.bench.senders import BenchError, SeriesSource, rest_requests, send_http, storescu_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not storescu_available(), reason="dcmtk storescu is not installed"),
    pytest.mark.skipif(not DICOMWEB_PLUGIN.exists(), reason="Orthanc's DICOMweb plugin is not installed"),
]


def _medgate_db_count(home: Path) -> int:
    with sqlite3.connect(home / "gateway.db") as conn:
        return int(conn.execute("SELECT count(*) FROM instances").fetchone()[0])


def test_every_path_is_timed_and_every_instance_indexed(tmp_path: Path) -> None:
    import httpx

    cfg = BenchConfig(instances=8, matrix=64, repeats=2, batch=3, associations=4, warmup=2)
    source = SeriesSource.generate(instances=8, matrix=64, seed=3)
    with run_orthanc(tmp_path / "orthanc") as orthanc, run_medgate(tmp_path / "medgate") as medgate:
        results = run_bench(cfg, medgate, orthanc, source, tmp_path / "series")
        orthanc_count = int(orthanc.get("/statistics")["CountInstances"])
        medgate_count = _medgate_db_count(tmp_path / "medgate" / "home")
        # a duplicate is not a fresh store: the sender says so instead of timing it
        again = rest_requests([f.read_bytes() for f in source.write("dup", tmp_path / "dup", 1)])
        with httpx.Client() as client:
            send_http(client, orthanc.http_url + "/instances", again, stow=False, headers={})
            with pytest.raises(BenchError, match="AlreadyStored"):
                send_http(client, orthanc.http_url + "/instances", again, stow=False, headers={})

    expected = (cfg.warmup + cfg.repeats * cfg.instances) * len(MEASUREMENTS)
    assert orthanc_count == expected
    assert medgate_count == expected
    assert results["instances_sent"] == {"medgate": expected, "orthanc": expected}
    assert results["instances_indexed"] == {"medgate": expected, "orthanc": expected}

    for server in ("medgate", "orthanc"):
        assert set(results["measurements"][server]) == set(MEASUREMENTS)
        for measured in results["measurements"][server].values():
            assert len(measured["seconds"]) == cfg.repeats
            assert all(s > 0 for s in measured["seconds"])
            rates = [cfg.instances / s for s in measured["seconds"]]
            assert measured["mean"] == pytest.approx(statistics.mean(rates))
            assert measured["std"] == pytest.approx(statistics.stdev(rates))
            # the server's own CPU time, read from /proc for the process itself
            assert len(measured["server_cpu_ms_per_instance"]) == cfg.repeats
            assert measured["server_cpu_ms_mean"] is not None

    assert [c["path"] for c in results["comparisons"]] == [
        "C-STORE, 1 association",
        "C-STORE, 4 associations",
        "STOW 3/req vs Orthanc STOW 3/req",
        "STOW 3/req vs Orthanc REST 1/req",
        "STOW 1/req vs Orthanc REST 1/req",
    ]
    for row in results["comparisons"]:
        mg = results["measurements"]["medgate"][row["medgate"]]
        orth = results["measurements"]["orthanc"][row["orthanc"]]
        assert row["medgate_mean"] == mg["mean"]
        assert row["orthanc_mean"] == orth["mean"]
        assert row["ratio"] == pytest.approx(mg["mean"] / orth["mean"])
    json.dumps(results)  # the --json output is plain JSON


def test_command_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    args = ["ingest", "--instances", "4", "--matrix", "32", "--repeats", "1", "--warmup", "1", "--only", "stow"]
    result = CliRunner().invoke(bench_app, [*args, "--batch", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "STOW 2/req vs Orthanc STOW 2/req" in result.stdout
    saved = json.loads(out.read_text())
    assert [c["medgate"] for c in saved["comparisons"]] == ["stow"]
    assert saved["instances_indexed"] == {"medgate": 5, "orthanc": 5}


def test_command_refuses_unknown_paths() -> None:
    result = CliRunner().invoke(bench_app, ["ingest", "--only", "cstore-1,carrier-pigeon"])
    assert result.exit_code == 2
    assert "carrier-pigeon" in result.output
