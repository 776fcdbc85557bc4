"""One command-line style (umi_data.plumbing.cli) for every entry point and console script: the help of
each command is walked and checked, and usage errors are one line with exit 2."""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from umi_data import __version__
from umi_data.plumbing.cli import METAVARS, Parser, program

REPO = Path(__file__).resolve().parents[1]
#: every `python -m` entry point (a module with main(argv)); umi_data's subcommands are walked below
ENTRY_POINTS = ["umi_data", "umi_data.data_cards", "umi_data.synth.heldout", "umi_train", "umi_train.tiny", "umi_train.sft", "umi_train.glpft",
                "umi_train.export", "umi_train.serve", "umi_agent", "umi_agent.predict", "umi_agent.evaluate",
                "umi_agent.run", "umi_agent.demo", "umi_agent.reproduce", "umi_agent.passrate", "umi_agent.toolserver",
                "umi_agent.curves"]
DISPATCHERS = {"umi_data", "umi_train", "umi_agent"}
SCRIPTS = {"umi-data": "umi_data", "umi-train": "umi_train", "umi-agent": "umi_agent"}


@pytest.fixture
def parsers(monkeypatch: pytest.MonkeyPatch) -> list[Parser]:
    """Every Parser whose parse_args runs (main(["--help"]) stops there, before any work)."""
    seen: list[Parser] = []
    original = Parser.parse_known_args

    def recording(self: Parser, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Parser, "parse_known_args", recording)
    return seen


def entry(module: str):
    """The `main` that `python -m module` runs."""
    return importlib.import_module(module + (".__main__" if module in DISPATCHERS else "")).main


def help_of(module: str, parsers: list[Parser], capsys: pytest.CaptureFixture) -> tuple[Parser, str]:
    with pytest.raises(SystemExit) as exit_info:
        entry(module)(["--help"])
    assert exit_info.value.code == 0
    assert parsers, f"{module} does not parse with umi_data.plumbing.cli.Parser"
    return parsers[-1], capsys.readouterr().out


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def check_style(parser: argparse.ArgumentParser, command: str) -> None:
    text = parser.format_help()
    first = (parser.description or "").strip().split("\n\n")[0]  # the sentence that says what the command does
    assert first and first[0].isupper() and first.endswith("."), f"{command}: description {first!r}"
    assert "--version" in text, command
    assert not re.search(r"\(default [^:]", text), f"{command}: defaults are shown as (default: X)"
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        where = f"{command} {'/'.join(action.option_strings) or action.dest}"
        takes_value = action.nargs != 0
        if takes_value and action.choices is None:
            words = re.findall(r"[A-Za-z_]+", str(action.metavar))
            assert action.metavar is not None and words and set(words) <= METAVARS, f"{where}: metavar {action.metavar!r}"
        assert action.help, f"{where}: no help"
        default = action.default
        if action.option_strings and default not in (None, [], argparse.SUPPRESS) and not isinstance(default, bool) and not action.required:
            shown = f"(default: {default})" in " ".join(text.split()) or "(default: " in (action.help or "")  # or said in words
            assert shown, f"{where}: default {default!r} not shown"
    if subcommands(parser) or command.split()[0] in DISPATCHERS and len(command.split()) == 1:
        return
    assert "--quiet" in text and "--no-progress" in text, f"{command}: --quiet (alias --no-progress) missing"


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_has_the_common_style(module: str, parsers: list[Parser], capsys: pytest.CaptureFixture) -> None:
    parser, text = help_of(module, parsers, capsys)
    assert text.startswith(f"usage: {program(module)}")
    check_style(parser, module)
    for name, sub in subcommands(parser).items():
        assert isinstance(sub, Parser), f"{module} {name}"
        check_style(sub, f"{module} {name}")


def test_the_help_bugs_of_issue_16_are_gone(parsers: list[Parser], capsys: pytest.CaptureFixture) -> None:
    parser, _ = help_of("umi_data", parsers, capsys)
    build = " ".join(subcommands(parser)["build"].format_help().split())
    assert "(default: 0)" in build and "(default: 0.5)" in build  # --seed and --split-ratio
    assert "agent-run" in build and "see `python -m umi_data build --help`" not in build  # the sources, listed here
    query = subcommands(parser)["query"].format_help()
    assert "DIR [DIR ...] SQL" in query and "SQL [DIR" not in query
    _, predict = help_of("umi_agent.predict", parsers, capsys)
    assert "Table 1." in predict and "Table 1:" not in predict
    for name in ("run", "schemas", "card", "demo"):
        assert subcommands(parser).get(name) is None or subcommands(parser)[name].description


@pytest.mark.parametrize("package", ["umi_train", "umi_agent"])
def test_package_entry_points_list_and_run_their_commands(package: str, capsys: pytest.CaptureFixture) -> None:
    main = entry(package)
    commands = importlib.import_module(f"{package}.__main__").COMMANDS
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in commands)
    for name in commands:  # each listed command is a module whose main(argv) answers --help
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: {program(package)} {name}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["umi_data", "build", "toolbench"], ["umi_data", "nonsense"], ["umi_train", "nonsense"],
                                  ["umi_train.sft", "--max-steps", "0"], ["umi_agent.predict", "--limit", "x"], ["umi_agent", "nope"]])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    module, *args = argv
    with pytest.raises(SystemExit) as exit_info:
        entry(module)(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and ": error: " in err and "Traceback" not in err, err


def test_version_everywhere(capsys: pytest.CaptureFixture) -> None:
    for module, argv in (("umi_data", ["--version"]), ("umi_data", ["build", "--version"]), ("umi_train", ["--version"]),
                         ("umi_train.glpft", ["--version"]), ("umi_agent.run", ["--version"])):
        with pytest.raises(SystemExit):
            entry(module)(argv)
        assert capsys.readouterr().out.strip() == f"umi {__version__}"


def test_no_progress_is_an_alias_of_quiet() -> None:
    from umi_data.__main__ import _parser

    args = _parser().parse_args(["build", "toolbench", "x", "--out", "y", "--no-progress"])
    assert args.quiet is True


def test_console_scripts_are_declared_and_installed() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert {name: target.split(":")[0].removesuffix(".__main__") for name, target in scripts.items()} == SCRIPTS
    bindir = Path(sys.executable).parent
    for script, package in SCRIPTS.items():
        path = bindir / script if (bindir / script).exists() else shutil.which(script)
        if path is None:
            pytest.skip(f"{script} is not installed beside {sys.executable} (pip install -e . installs it)")
        done = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {script} "), done.stdout + done.stderr
        sub = {"umi-data": "build", "umi-train": "sft", "umi-agent": "run"}[script]
        done = subprocess.run([str(path), sub, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--quiet" in done.stdout, done.stderr
