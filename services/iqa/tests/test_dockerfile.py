"""The serving image, checked by reading its Dockerfile (no Docker on the test machines): it
copies paths that exist, installs no torch and no training extra, runs as a non-root user,
checks its own health and starts the API."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[1]
ROOT = SERVICE.parents[1]


def instructions() -> list[tuple[str, str]]:
    text = (SERVICE / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_every_copied_path_exists_in_the_repository() -> None:
    copies = [shlex.split(rest) for keyword, rest in instructions() if keyword == "COPY" and "--from" not in rest]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path (the context is the repository root)"


def test_the_image_serves_without_torch_as_a_non_root_user() -> None:
    steps = instructions()
    installs = " ".join(rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest)
    assert "services/iqa" in installs and "libs/common" in installs
    assert "[training]" not in installs and "torch.txt" not in installs and "libs/ml" not in installs
    assert "find_spec('torch') is not None" in installs  # the build itself fails if torch came along
    assert steps[0][1].startswith("python:3.11-slim") and steps[0][0] == "FROM"
    final_stage = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    [user] = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert user not in ("root", "0")
    [health] = [rest for keyword, rest in final_stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in health
    [cmd] = [rest for keyword, rest in final_stage if keyword == "CMD"]
    assert cmd.startswith('["medgate", "iqa", "serve", "--host", "0.0.0.0"')
