"""The serving image, checked by reading its Dockerfile (no Docker on the test machines): it
copies paths that exist, installs no torch and no training extra, runs as a non-root user,
checks its own health and starts the API."""

from __future__ import annotations

from pathlib import Path

from shared_fixtures import assert_copies_exist, assert_serving_image

SERVICE = Path(__file__).resolve().parents[1]
ROOT = SERVICE.parents[1]


def test_every_copied_path_exists_in_the_repository() -> None:
    assert_copies_exist(SERVICE / "Dockerfile", ROOT)


def test_the_image_serves_without_torch_as_a_non_root_user() -> None:
    assert_serving_image(SERVICE / "Dockerfile", "services/iqa", "medgate iqa serve")
