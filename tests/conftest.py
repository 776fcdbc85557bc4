"""Shared fixtures. Tests that need the real data in ../shared skip when it is absent (the project
must pass its own tests without it); the reason is printed once, in the header and as one folded
summary line, not once per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


SHARED_REASON = f"needs the real data in ../shared/data (looked for {SHARED_DATA}; absent on this machine)"


def pytest_report_header() -> str:
    if SHARED_DATA.is_dir():
        return f"../shared/data: {SHARED_DATA} (the tests on real ToolBench / alpha-UMi / ToolAlpaca data run)"
    return f"../shared/data: absent ({SHARED_DATA}); the tests on real data skip, everything else runs"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Report every ../shared skip at this file's location, so that `-ra` folds them into one
    summary line (pytest keys skips by file, line and reason, and a fixture's skip is located at
    each test)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and "../shared" in str(report.longrepr[2]):
        report.longrepr = (__file__, None, f"Skipped: {SHARED_REASON}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says where it was looked for."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_REASON)
    return SHARED_DATA


@pytest.fixture(scope="session")
def toolbench_answer(shared_data: Path) -> Path:
    return shared_data / "toolbench" / "answer"


@pytest.fixture(scope="session")
def train_example(shared_data: Path) -> Path:
    return shared_data / "alpha_umi" / "train-example"
