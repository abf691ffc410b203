"""The package installs, imports, and its version matches its distribution metadata."""

from __future__ import annotations

import sys
from importlib.metadata import version

import medgate_fl


def test_installed_and_importable() -> None:
    assert medgate_fl.__version__ == version("medgate-fl")
    assert medgate_fl.__doc__


def test_serving_package_does_not_pull_in_torch() -> None:
    # import-linter checks the static graph; this checks what importing really loads.
    import subprocess

    code = "import sys, medgate_fl; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
