"""Shared fixtures: where the real data lives (if anywhere) and small generated data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """`../shared/data` next to the project, or `$LTR_SHARED_DATA`."""
    return Path(os.environ.get("LTR_SHARED_DATA", ROOT.parent / "shared" / "data"))


def real_data(name: str) -> Path:
    """Path of a real data set, or skip the test on machines without it."""
    path = shared_data_root() / name
    if not path.is_dir():
        pytest.skip(f"real data set {name!r} not found under {shared_data_root()}")
    return path


@pytest.fixture(scope="session")
def aware2023() -> Path:
    return real_data("aware2023")


@pytest.fixture(scope="session")
def lervup2021() -> Path:
    return real_data("lervup2021")
