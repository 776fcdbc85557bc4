"""Every `python -m ...` command the README shows exists and parses: its module and subcommand
answer `--help`. (What the commands do is tested elsewhere and run by `make demo`.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SUBCOMMANDS = {"umi_data": "build merge validate schemas export query card synth demo".split()}


def commands() -> list[tuple[str, ...]]:
    blocks = re.findall(r"```(?:\w*)\n(.*?)```", README.read_text(), flags=re.S)
    found = set()
    for block in blocks:
        for line in block.splitlines():
            match = re.search(r"python -m ([\w.]+)(?: (\w+))?", line)
            if match:
                module, word = match.groups()
                found.add((module, word) if word in SUBCOMMANDS.get(module, []) else (module,))
    return sorted(found)


def test_the_readme_shows_every_entry_point() -> None:
    modules = {c[0] for c in commands()}
    assert {"umi_data", "umi_train.tiny", "umi_train.sft", "umi_train.glpft", "umi_agent.predict",
            "umi_agent.evaluate", "umi_agent.run", "umi_agent.reproduce"} <= modules


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_readme_command_answers_help(command: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
