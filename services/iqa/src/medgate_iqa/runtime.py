"""What the HTTP API and the workflow worker both build from settings: the gate policy and
the assessor around the quality model.

A missing model or a policy file with a typo must stop the service at start-up with a
message naming the file, not turn into a gate that silently passes every study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs (types-PyYAML) are optional
from pydantic import ValidationError

from medgate_common.errors import ConfigError, ModelError
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.labels import MODALITY_INDEX
from medgate_iqa.core.model import QualityModel, weights_dir
from medgate_iqa.core.policy import GatePolicy
from medgate_iqa.settings import IqaSettings

MODEL_FILES = ("quality.onnx", "quality.json")


def load_policy(path: Path) -> GatePolicy:
    """A GatePolicy from a JSON or YAML file (YAML reads both).

    Thresholds are merged field by field onto the defaults, so a site that only raises the
    CT noise limit writes ``modalities: {CT: {noise_severe: 120}}`` and keeps the rest.
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the gate policy: {exc.strerror or exc}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: the gate policy is not valid JSON or YAML: {exc}", file=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the gate policy must be a mapping (got {type(data).__name__})", file=str(path))
    overrides = data.get("modalities", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: 'modalities' must map a modality to its thresholds", file=str(path))
    unknown = sorted(set(overrides) - set(MODALITY_INDEX))
    if unknown:
        raise ConfigError(
            f"{path}: the gate has no thresholds for {', '.join(map(str, unknown))}; "
            f"it assesses {' and '.join(MODALITY_INDEX)}",
            file=str(path),
        )
    merged = GatePolicy().model_dump()
    for modality, fields in overrides.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"{path}: thresholds of {modality} must be a mapping", file=str(path))
        merged["modalities"][modality] = {**merged["modalities"][modality], **fields}
    merged.update({k: v for k, v in data.items() if k != "modalities"})
    try:
        return GatePolicy.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid gate policy: {problems}", file=str(path)) from None


def build_assessor(settings: IqaSettings) -> QualityAssessor:
    """Load the model (one ONNX Runtime session) and the policy; raise if either is unusable."""
    folder = settings.weights or weights_dir()
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"no quality model in {folder} ({', '.join(missing)} missing); "
            "set MEDGATE_IQA_WEIGHTS to a folder made by `medgate iqa train`",
            folder=str(folder),
        )
    model = QualityModel.load(folder, providers=settings.providers)
    policy = load_policy(settings.policy_file) if settings.policy_file is not None else None
    return QualityAssessor(model, policy)
