"""Settings, the gate-policy file and start-up: a typo or a missing model stops the service
with a message that names the file, instead of a gate that passes everything."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from shared_fixtures import serve_in_thread

from medgate_common.errors import ConfigError, ModelError
from medgate_iqa.core.model import weights_dir
from medgate_iqa.core.policy import GatePolicy
from medgate_iqa.main import create_app
from medgate_iqa.runtime import build_assessor, load_policy
from medgate_iqa.settings import IqaSettings


def test_settings_defaults_and_empty_values(tmp_path: Path) -> None:
    settings = IqaSettings(home=tmp_path, weights="", policy_file="")
    assert settings.weights is None and settings.policy_file is None
    assert settings.service_name == "iqa" and settings.max_upload_bytes == 256 * 1024 * 1024
    assert settings.providers == ("CPUExecutionProvider",)
    assert settings.resolved_storage_uri() == (tmp_path / "storage").resolve().as_uri()


def test_a_policy_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("study_rule: best\nmodalities:\n  CT:\n    noise_severe: 120\n")
    policy, default = load_policy(path), GatePolicy()
    assert policy.study_rule == "best"
    assert policy.for_modality("CT").noise_severe == 120
    assert policy.for_modality("CT").presence == default.for_modality("CT").presence
    assert policy.for_modality("MR") == default.for_modality("MR")
    as_json = tmp_path / "policy.json"
    as_json.write_text(json.dumps({"modalities": {"MR": {"severe": 0.7}}}))
    assert load_policy(as_json).for_modality("MR").severe == 0.7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modalities:\n  US: {noise_severe: 1}\n", "no thresholds for US"),
        ("modalities:\n  CT: {presence: 2}\n", "modalities.CT.presence"),
        ("modalities:\n  CT: {prescence: 0.4}\n", "modalities.CT.prescence"),
        ("study_rule: median\n", "study_rule"),
        ("- just\n- a list\n", "must be a mapping"),
        ("modalities: [CT]\n", "'modalities' must map"),
        ("study_rule: [unclosed\n", "not valid JSON or YAML"),
    ],
)
def test_a_bad_policy_file_is_a_config_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert message in caught.value.message and str(path) in caught.value.message
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_the_assessor_uses_the_configured_weights_and_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("study_rule: best\n")
    assessor = build_assessor(IqaSettings(home=tmp_path, policy_file=policy))
    assert assessor.policy.study_rule == "best"
    assert assessor.model.info.backend == "onnxruntime"
    with pytest.raises(ModelError, match=r"quality\.onnx, quality\.json missing"):
        build_assessor(IqaSettings(home=tmp_path, weights=tmp_path / "empty"))


def test_the_packaged_weights_are_where_the_loader_looks() -> None:
    card = json.loads((weights_dir() / "quality.json").read_text())
    assert (weights_dir() / "quality.onnx").is_file() and card["name"]


def test_the_app_loads_the_model_at_start_up_and_refuses_to_start_without_one(tmp_path: Path) -> None:
    settings = IqaSettings(home=tmp_path)
    with serve_in_thread(create_app(settings)) as url:
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["model"]["backend"] == "onnxruntime"
    broken = create_app(settings.model_copy(update={"weights": tmp_path / "nothing"}))

    async def start() -> None:
        async with broken.router.lifespan_context(broken):
            pass

    with pytest.raises(ModelError):
        asyncio.run(start())


def test_the_api_and_the_worker_task_load_without_torch() -> None:
    # import-linter checks the static graph; this checks what importing really loads.
    code = "import sys, medgate_iqa.main, medgate_iqa.tasks; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
