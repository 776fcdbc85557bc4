"""Every command the README and the documentation guides (docs/*.md) show exists and parses: its
module and subcommand answer `--help`, for `python -m MODULE [SUB]` and the console scripts
`.venv/bin/umi-X SUB` alike. (What the commands do is tested elsewhere and run by `make demo`;
lines naming no umi entry point, such as `vllm serve` or `make reproduce`, are shown only.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: the pages whose command blocks are checked: the README and every documentation page
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]
SUBCOMMANDS = {"umi_data": "build merge validate schemas export query card synth demo".split()}
MODULES = {"umi-data": "umi_data", "umi-train": "umi_train", "umi-agent": "umi_agent"}


def blocks() -> list[str]:
    return [block for page in PAGES for block in re.findall(r"```(?:\w*)\n(.*?)```", page.read_text(), flags=re.S)]


def commands() -> list[tuple[str, ...]]:
    """(module,) or (module, subcommand) of every command line in the pages' code blocks:
    `python -m MODULE [SUB]` and `[.venv/bin/]umi-X SUB`."""
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
