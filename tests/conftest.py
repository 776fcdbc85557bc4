"""Shared fixtures. Tests that need the real data in ../shared skip with a printed reason when
it is absent (the project must pass its own tests without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says where it was looked for."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the real data in ../shared/data (looked for {SHARED_DATA}; absent on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def toolbench_answer(shared_data: Path) -> Path:
    return shared_data / "toolbench" / "answer"


@pytest.fixture(scope="session")
def train_example(shared_data: Path) -> Path:
    return shared_data / "alpha_umi" / "train-example"
