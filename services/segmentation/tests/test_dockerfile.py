"""The serving image, checked by reading its Dockerfile (no Docker on the test machines): it
copies paths that exist, installs no torch and no training extra, refuses to build without
the packaged model, runs as a non-root user, checks its own health and starts the API."""

from __future__ import annotations

from pathlib import Path

from shared_fixtures import assert_copies_exist, assert_serving_image, dockerfile_instructions

SERVICE = Path(__file__).resolve().parents[1]
ROOT = SERVICE.parents[1]


def test_every_copied_path_exists_in_the_repository() -> None:
    assert_copies_exist(SERVICE / "Dockerfile", ROOT)


def test_the_image_serves_without_torch_as_a_non_root_user() -> None:
    installs = assert_serving_image(SERVICE / "Dockerfile", "services/segmentation", "medgate seg serve")
    assert "LesionModel.load(weights_dir())" in installs  # the build fails if the model is missing or mismatched
    health = [rest for keyword, rest in dockerfile_instructions(SERVICE / "Dockerfile") if keyword == "HEALTHCHECK"]
    assert ["8102" in h for h in health] == [True]


def test_the_build_context_leaves_tests_and_checkpoints_out() -> None:
    ignored = (SERVICE / "Dockerfile.dockerignore").read_text().splitlines()
    assert "services/segmentation/tests" in ignored and "**/.venv" in ignored
