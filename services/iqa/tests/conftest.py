"""Fixtures of the image-quality service tests: the packaged model and real DICOM series
(synthetic studies written by ``medgate_common.synth``, 8 slices of 128x128).

The helpers that make the series live in iqa_fixtures.py, which tests/e2e shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from iqa_fixtures import Series, add_noise, remake, synthetic_series

from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.runtime import build_assessor
from medgate_iqa.settings import IqaSettings


@pytest.fixture(scope="session")
def assessor() -> QualityAssessor:
    """The model shipped in medgate_iqa/weights (or MEDGATE_IQA_WEIGHTS), loaded once."""
    return build_assessor(IqaSettings())


@pytest.fixture
def settings(tmp_path: Path) -> IqaSettings:
    return IqaSettings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def ct_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    return synthetic_series("CT", 21, tmp_path_factory.mktemp("ct"))


@pytest.fixture(scope="session")
def noisy_ct_series(ct_series: Series) -> Series:
    """A second series of the same study, with noise far above any diagnostic CT."""
    return remake(ct_series, add_noise(300.0))


@pytest.fixture(scope="session")
def mr_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    return synthetic_series("MR", 22, tmp_path_factory.mktemp("mr"))
