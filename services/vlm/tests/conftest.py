"""Fixtures of the reasoning service's DICOM tests; the helpers live in vlm_fixtures.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from medgate_common.synth import SynthStudy

# Not in the root conftest's list of helper folders: appended here, after the root's, so that
# ``from conftest import ...`` still finds the root conftest.
sys.path.append(str(Path(__file__).parent))

from vlm_fixtures import SegmentedStudy, segment


@pytest.fixture(scope="session")
def segmented(small_ct: tuple[SynthStudy, Path]) -> SegmentedStudy:
    study = segment(*small_ct)
    assert len(study.lesions) >= 2
    return study
