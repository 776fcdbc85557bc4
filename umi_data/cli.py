"""One command-line style for every umi entry point (`umi_data`, `umi_train.*`, `umi_agent.*`).

Every parser is a `Parser`, so the style lives here once instead of in each command:

- `--help` shows each option's default as `(default: X)` (unless it is None or a flag) and keeps
  the line breaks of descriptions;
- `--version` prints `umi X.Y.Z`; `--quiet` (old spelling `--no-progress`) turns off progress
  output (bars and progress lines; results and errors are still printed), on every command so
  scripts can pass it uniformly;
- a usage error is one line on stderr, `PROG: error: WHAT (see PROG --help)`, and exit 2;
- metavars: DIR (a directory), FILE (a file), PATH (either), N or I/N (integers), X (a number),
  NAME, ROLE, RUN (a run directory), SOURCE, SQL, URL; choices show as `{a,b}`.

`dispatch` is the entry point of a package whose commands are modules (`python -m umi_train`,
`umi-agent`): it lists them, and runs `COMMAND ARGS...` as `python -m package.COMMAND ARGS...`.
This module imports nothing heavy: the data side must not pull torch in.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

EXIT_USAGE = 2
QUIET_HELP = "no progress output (bars, progress lines); results and errors are still printed"
METAVARS = frozenset({"DIR", "FILE", "PATH", "I", "N", "X", "NAME", "RUN", "ROLE", "SOURCE", "SQL", "URL", "COMMAND", "ARGS"})


def version() -> str:
    from umi_data import __version__

    return f"umi {__version__}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks; options show their default once."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or isinstance(default, bool) or default == [] or default is argparse.SUPPRESS or action.required:
            return text
        if isinstance(action, (argparse._VersionAction, argparse._HelpAction)):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with umi's style (see the module docstring). `quiet=False` for
    a parser that only dispatches to subcommands (they carry `--quiet` themselves)."""

    def __init__(self, *args: Any, quiet: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=version(), help="print the umi version and exit")
        if quiet:
            self.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=QUIET_HELP)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_commands(parser: Parser) -> Any:
    """The subcommand registry of `parser` (use `add_command` to add to it)."""
    return parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)


def add_command(commands: Any, name: str, summary: str, description: str | None = None, **kwargs: Any) -> Parser:
    """A subcommand with a one-line `summary` (listed by the parent's --help) and a description
    (its own --help; the summary as a sentence when not given)."""
    return commands.add_parser(name, help=summary, description=description or sentence(summary), **kwargs)


def sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def fail(prog: str, error: object) -> int:
    """One line on stderr for a usage error (a missing file, a bad option); the exit code, 2."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return EXIT_USAGE


def run_guarded(prog: str, command: Callable[[], int], errors: tuple[type[BaseException], ...]) -> int:
    """`command()`, with any of `errors` reported by `fail` instead of a traceback."""
    try:
        return command()
    except errors as exc:
        return fail(prog, exc)


class Progress:
    """Prints `PROG: i/total WHAT (s)` about `lines` times as items complete (and after the last):
    progress that a log file or a pipe (`make demo`) shows as it happens, unlike a bar. Items
    may complete on several threads (`umi_agent.backends.ordered_map`)."""

    def __init__(self, total: int, what: str, *, prog: str, quiet: bool = False, lines: int = 10) -> None:
        self.total, self.what, self.prog, self.quiet = total, what, prog, quiet
        self.every, self.done_count, self.start = max(1, total // lines), 0, time.perf_counter()
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self.done_count += 1
            if not self.quiet and (self.done_count % self.every == 0 or self.done_count == self.total):
                print(f"{self.prog}: {self.done_count}/{self.total} {self.what} ({time.perf_counter() - self.start:.0f} s)", flush=True)

    def wrap(self, function: Callable[[T], R]) -> Callable[[T], R]:
        """`function`, counting each call that returns."""

        def counted(item: T) -> R:
            result = function(item)
            self.done()
            return result

        return counted


def prog_name(module: str, script: str) -> str:
    """`script` when this process was started as the console script, else `python -m module`."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"


def dispatch(package: str, script: str, description: str, commands: dict[str, str], argv: Sequence[str] | None = None) -> int:
    """`python -m PACKAGE COMMAND ARGS...` (or `SCRIPT COMMAND ARGS...`): run the module
    `PACKAGE.COMMAND`'s `main(ARGS)`; with no command, list the commands."""
    listing = "commands:\n" + "\n".join(f"  {name:<9} {summary}" for name, summary in commands.items())
    parser = Parser(prog=prog_name(package, script), description=description, quiet=False,
                    epilog=f"{listing}\n\nEach command is also `python -m {package}.COMMAND`; `COMMAND --help` for its options.")
    parser.add_argument("command", nargs="?", choices=list(commands), metavar="COMMAND", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the command's own arguments")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return importlib.import_module(f"{package}.{args.command}").main(args.args)


__all__ = ["EXIT_USAGE", "HelpFormatter", "METAVARS", "Parser", "add_command", "add_commands", "dispatch", "Progress", "fail",
           "prog_name", "run_guarded", "version"]
