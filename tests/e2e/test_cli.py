"""The installed ``medgate`` command, run as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def medgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("medgate")
    assert exe, "medgate is not on PATH; run scripts/setup.sh"
    return subprocess.run([exe, *args], capture_output=True, text=True, check=False, env=env, timeout=300)


def test_help_lists_commands_from_every_package_entry_point() -> None:
    proc = medgate("--help")
    assert proc.returncode == 0
    for command in ("synth", "samples", "demo", "version"):
        assert command in proc.stdout
    versions = medgate("version").stdout
    for dist in (
        "medgate-common",
        "medgate-ml",
        "medgate-gateway",
        "medgate-iqa",
        "medgate-seg",
        "medgate-vlm",
        "medgate-fl",
        "medgate-ui",
    ):
        assert f"{dist} 0.1.0" in versions


def test_synth_writes_the_manifest_and_is_deterministic(tmp_path: Path) -> None:
    args = ["--studies", "2", "--modality", "MR", "--seed", "9", "--slices", "8", "--matrix", "64", "--json"]
    first = medgate("synth", "--out", str(tmp_path / "a"), *args)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    assert [s["dir"] for s in manifest["studies"]] == ["study-0000", "study-0001"]
    assert all(s["files"] == 8 for s in manifest["studies"])
    assert medgate("synth", "--out", str(tmp_path / "b"), *args).returncode == 0
    files_a = sorted((tmp_path / "a").rglob("*.dcm"))
    assert len(files_a) == 16
    for fa in files_a:
        assert fa.read_bytes() == (tmp_path / "b" / fa.relative_to(tmp_path / "a")).read_bytes()


def test_synth_rejects_bad_options_clearly(tmp_path: Path) -> None:
    proc = medgate("synth", "--out", str(tmp_path), "--modality", "PET")
    assert proc.returncode == 2
    assert "--modality" in proc.stderr and "CT, MR" in proc.stderr
    proc = medgate("synth", "--out", str(tmp_path), "--profile", "nowhere")
    assert proc.returncode == 2 and "site-a" in proc.stderr


def test_demo_sends_a_study_through_the_embedded_workflow(tmp_path: Path) -> None:
    env = {**os.environ, "MEDGATE_HOME": str(tmp_path / "home")}
    proc = medgate("demo", env=env)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "home" / "demo" / "study-0000"
    truth = json.loads((out / "study.json").read_text())
    assert truth["study_instance_uid"] in proc.stdout
    assert f"{truth['lesion_count']} lesion(s)" in proc.stdout
    assert len(list((out / "dicom").glob("*.dcm"))) == 64
    assert (out / "labels" / "organs.nii.gz").is_file()
    # the study went through the gateway's DICOM listener, became ready and ran its workflow
    assert "64 accepted, 0 failed" in proc.stdout
    summary = json.loads((tmp_path / "home" / "demo" / "demo.json").read_text())
    # the quality gate judges the study, the lesion model segments it, reasoning drafts the report
    job = json.loads((tmp_path / "home" / "demo" / "job.json").read_text())
    [iqa] = [s for s in job["steps"] if s["name"] == "iqa"]
    # a clean synthetic study passes the gate
    assert iqa["result"]["verdict"] in ("good", "usable"), iqa["result"]
    assert summary["status"] == "review_ready"
    assert summary["steps"] == {
        "iqa": "done",
        "segmentation": "done",
        "reasoning": "done",
        "assemble": "done",
    }
    [seg] = [s for s in job["steps"] if s["name"] == "segmentation"]
    found = len(seg["result"]["series"][0]["lesions"])
    assert f"Lesions       {found} lesion(s)" in proc.stdout
    [reasoning] = [s for s in job["steps"] if s["name"] == "reasoning"]
    [report] = reasoning["result"]["series"]
    assert 0.0 <= report["triage"]["score"] <= 1.0 and report["statements"], report
    # the 64 images, the DICOM SEG of the lesions, the SR and the key images, in the same study
    [assemble] = [s for s in job["steps"] if s["name"] == "assemble"]
    derived = [(d["step"], d["modality"]) for d in assemble["result"]["derived_instances"]]
    assert derived.count(("segmentation", "SEG")) == (1 if found else 0)
    assert derived.count(("reasoning", "SR")) == 1
    stored = list((tmp_path / "home" / "storage" / "dicom" / truth["study_instance_uid"]).rglob("*.dcm"))
    assert len(stored) == summary["stored"] == 64 + len(derived)
    assert f"Quality gate  verdict {iqa['result']['verdict']}" in proc.stdout
    assert job["job_id"] == summary["job"] and job["trigger"] == "quiet"
    assert (tmp_path / "home" / "broker.sqlite").is_file()  # the embedded broker: no server
    # duplicates do not re-open the study: the demo asks for a re-run, whose job writes its own
    # SEG, SR and key images
    again = medgate("demo", env=env)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "home" / "demo" / "demo.json").read_text())
    assert (
        second["job"] != summary["job"]
        and second["status"] == summary["status"]
        and second["stored"] == summary["stored"] + len(derived)
    )
    assert "manual:demo" in again.stdout


def test_samples_lists_installed_real_data() -> None:
    proc = medgate("samples")
    assert proc.returncode == 0
    assert "MISSING" not in proc.stdout, proc.stdout
    assert "/usr/share/mricron/templates/ch2.nii.gz" in proc.stdout
