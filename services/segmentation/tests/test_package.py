"""The package installs, imports, and its version matches its distribution metadata; its
serving modules load no torch; ``medgate seg`` offers the serving commands."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from typer.testing import CliRunner

import medgate_seg
from medgate_seg.cli import app


def test_installed_and_importable() -> None:
    assert medgate_seg.__version__ == version("medgate-seg")
    assert medgate_seg.__doc__


def test_serving_package_does_not_pull_in_torch() -> None:
    # import-linter checks the static graph; this checks what importing really loads.
    code = (
        "import sys, medgate_seg, medgate_seg.main, medgate_seg.tasks, medgate_seg.cli; "
        "sys.exit(1 if 'torch' in sys.modules or 'monai' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_cli_offers_serve_and_worker() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.stdout and "worker" in result.stdout
    served = CliRunner().invoke(app, ["serve", "--help"])
    assert served.exit_code == 0 and "--port" in served.stdout
