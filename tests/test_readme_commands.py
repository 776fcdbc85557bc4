"""The README's commands: its tour runs verbatim from a new shell (no activated virtual
environment, `HOME` a temporary directory, only the system PATH), and every other command it
and the documentation guides (docs/*.md) show exists and parses (its module or console script
answers `--help`; what the commands do is tested elsewhere and run by `make demo`). Lines that
name no umi entry point (`vllm serve`, `make reproduce`) are shown only: they need a GPU, the
network or an hour."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from umi_data.plumbing.cli import SCRIPTS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: the pages whose command blocks are checked: the README and every documentation page
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]
VENV = Path(sys.prefix)
SUBCOMMANDS = {"umi_data": "build merge validate schemas export query card synth demo".split()}
MODULES = {script: package for package, script in SCRIPTS.items()}


def blocks() -> list[str]:
    return [block for page in PAGES for block in re.findall(r"```(?:\w*)\n(.*?)```", page.read_text(), flags=re.S)]


def tour() -> list[str]:
    """The command lines of the block under `## A tour`."""
    section = README.read_text().split("## A tour", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def commands() -> list[tuple[str, ...]]:
    """(module,) or (module, subcommand) of every command line in the pages' code blocks:
    `python -m MODULE [SUB]` and `.venv/bin/umi-X [SUB]`."""
    found = set()
    for block in blocks():
        for line in block.splitlines():
            match = re.search(r"python -m ([\w.]+)(?: (\w+))?", line)
            script = re.search(r"(?:^|[\s$])(?:\.venv/bin/)?(umi-(?:data|train|agent)) (\w+)", line)
            if match:
                module, word = match.groups()
                found.add((module, word) if word in SUBCOMMANDS.get(module, []) else (module,))
            if script:
                package, word = MODULES[script.group(1)], script.group(2)
                found.add((package, word) if package == "umi_data" else (f"{package}.{word}",))
    return sorted(found)


def example_scripts() -> list[str]:
    """Every `examples/NAME.py` a page's code block runs."""
    return sorted({m for block in blocks() for m in re.findall(r"python (examples/\w+\.py)", block)})


@pytest.mark.parametrize("script", example_scripts())
def test_example_command_answers_help(script: str) -> None:
    """What examples/*.py do is run by tests/test_examples.py; here: each shown exists and parses."""
    done = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_every_guide_is_read() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "data.md", "training.md", "agent.md", "serving.md", "reproduction.md", "scale-out.md"} <= names


def test_the_readme_shows_every_entry_point() -> None:
    modules = {c[0] for c in commands()}
    assert {"umi_data", "umi_train.tiny", "umi_train.sft", "umi_train.glpft", "umi_agent.predict",
            "umi_agent.evaluate", "umi_agent.run", "umi_agent.reproduce"} <= modules


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_readme_command_answers_help(command: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_the_tour_uses_the_console_scripts_of_the_venv() -> None:
    lines = tour()
    assert len(lines) >= 8 and all(line.startswith(".venv/bin/umi-") for line in lines), lines
    assert any("--heldout" in line for line in lines) and any("predict" in line and "heldout-corpus/" in line for line in lines)


def test_the_tour_outputs_are_ignored_by_git() -> None:
    ignored = {line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()}
    written = {re.sub(r"/.*", "", word) for line in tour() for flag, word in zip(shlex.split(line), shlex.split(line)[1:]) if flag == "--out"}
    assert written and written <= ignored, written - ignored


def test_the_tour_runs_verbatim_in_a_new_shell(tmp_path: Path) -> None:
    """Each line, exactly as printed, through `bash -c` in a directory that has the repository's
    `.venv` (as the repository root has), with nothing of this test process's environment but a
    plain PATH: no activated venv, no HF_* variables, HOME a new empty directory."""
    if not (VENV / "bin" / "umi-data").exists():
        pytest.skip(f"the console scripts are not installed in {VENV} (make install)")
    (tmp_path / ".venv").symlink_to(VENV)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    for line in tour():
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr and "\r" not in done.stdout + done.stderr, line  # no bars in a pipe
    assert (tmp_path / "static" / "metrics.json").is_file() and (tmp_path / "live" / "metrics.json").is_file()
    assert not set(os.listdir(home)) - {".cache", ".config"}, os.listdir(home)  # nothing under HOME but caches (matplotlib's config)
