"""One command-line style for every umi entry point (`umi_data`, `umi_train.*`, `umi_agent.*`).

Every parser is a `Parser`, so the style lives here once instead of in each command:

- `--help` shows each option's default as `(default: X)` (unless it is None or a flag) and keeps
  the line breaks of descriptions;
- `--version` prints `umi X.Y.Z`; `--quiet` (old spelling `--no-progress`) turns off progress
  output (bars and progress lines; results and errors are still printed), on every command so
  scripts can pass it uniformly;
- a usage error is one line on stderr, `PROG: error: WHAT (see PROG --help)`, and exit 2; PROG
  is the command as its console script spells it (`umi-data build`, `umi-train sft`: `program`),
  whether it was started that way or as `python -m umi_train.sft`, so every message names one
  program;
- options are never abbreviated (`--ou` is not `--out`: `allow_abbrev=False`); an unknown option
  is reported by the (sub)command that was given it, with the closest option suggested;
- Ctrl-C is one line, `PROG: interrupted; ...`, and exit 130 (`interrupted`), not a traceback;
- metavars: DIR (a directory), FILE (a file), PATH (either), N or I/N (integers), X (a number),
  NAME, ROLE, RUN (a run directory), SOURCE, SQL, URL; choices show as `{a,b}`.

`dispatch` is the entry point of a package whose commands are modules (`python -m umi_train`,
`umi-agent`): it lists them, and runs `COMMAND ARGS...` as `python -m package.COMMAND ARGS...`.
This module imports nothing heavy: the data side must not pull torch in.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
#: the console script of each package: every command's one name in messages (`program`)
SCRIPTS = {"umi_data": "umi-data", "umi_train": "umi-train", "umi_agent": "umi-agent"}
#: modules whose command has another name: `python -m umi_data.synth.cli` is `umi-data synth`
ALIASES = {"umi_data.synth.cli": "umi-data synth"}
#: `python -m` entry points with no console script, and why: a maintainer's tool that writes into
#: the checkout, and the two-file form of `umi-data synth --heldout` (for a pool written already)
MODULE_ONLY = {"umi_data.data_cards": "regenerates the repository's data_cards/ (make data-cards)",
               "umi_data.synth.heldout": "held-out tasks from a pool written already; `umi-data synth --heldout` draws the pool itself"}
QUIET_HELP = "no progress output (bars, progress lines); results and errors are still printed"
METAVARS = frozenset({"DIR", "FILE", "PATH", "I", "N", "X", "NAME", "RUN", "ROLE", "SOURCE", "SQL", "URL", "COMMAND", "ARGS"})


def version() -> str:
    from umi_data import __version__

    return f"umi {__version__}"


def program(name: str) -> str:
    """The name of a command as its console script spells it: `umi_train.sft` and
    `python -m umi_train.sft` -> `umi-train sft`, `python -m umi_data build` -> `umi-data build`,
    `umi_agent.reproduce` -> `umi-agent reproduce`. Other names, and the `MODULE_ONLY` modules, are
    returned unchanged (those as `python -m MODULE`)."""
    words = name.removeprefix("python -m ").split(" ")
    if words[0] in ALIASES:
        return " ".join([ALIASES[words[0]], *words[1:]])
    package, _, rest = words[0].partition(".")
    if package not in SCRIPTS or words[0] in MODULE_ONLY:
        return f"python -m {words[0]}" if words[0] in MODULE_ONLY else name
    return " ".join([SCRIPTS[package], *(part.replace("_", "-") for part in rest.split(".") if part), *words[1:]])


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
        kwargs["allow_abbrev"] = False  # `--ou` must not silently mean `--out` (nor, once --output exists, something else)
        if kwargs.get("prog"):
            kwargs["prog"] = program(kwargs["prog"])
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=version(), help="print the umi version and exit")
        if quiet:
            self.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=QUIET_HELP)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{_choice_suggestion(message)} (see {self.prog} --help)\n")

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None) -> Any:
        """argparse's, except that a parser of options (no subcommands, no ARGS... remainder)
        rejects an unknown `--option` itself, before asking for missing required ones: the
        error then names this (sub)command, not its parent, and suggests the closest option."""
        arguments = sys.argv[1:] if args is None else list(args)
        quiet_third_party_bars()  # a command is starting: before it imports transformers or datasets
        _report_interrupts(self.prog)
        if self._checks_options():
            unknown = [word for word in self._option_words(arguments) if word.split("=", 1)[0] not in self._option_string_actions]
            if unknown:
                self.error(f"unrecognized arguments: {' '.join(unknown)}{self._suggestion(unknown[0])}")
        return super().parse_known_args(arguments, namespace)

    def _checks_options(self) -> bool:
        return not any(isinstance(a, argparse._SubParsersAction) or a.nargs == argparse.REMAINDER for a in self._actions)

    @staticmethod
    def _option_words(arguments: list[str]) -> list[str]:
        """The words that argparse would take for long options (`--name`, `--name=value`), up to `--`."""
        words = []
        for word in arguments:
            if word == "--":
                break
            if word.startswith("--") and len(word) > 2 and " " not in word.split("=", 1)[0]:
                words.append(word)
        return words

    def _suggestion(self, word: str) -> str:
        options = [option for option in self._option_string_actions if option.startswith("--")]
        close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.5)
        return f"; did you mean {close[0]}?" if close else ""


def _choice_suggestion(message: str) -> str:
    """`; did you mean build?` for argparse's `invalid choice: 'biuld' (choose from ...)`."""
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not found:
        return ""
    choices = [choice.strip().strip("'") for choice in found.group(2).split(",")]
    close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


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
    print(f"{program(prog)}: error: {error}", file=sys.stderr)
    return EXIT_USAGE


def interrupted(prog: str) -> int:
    """One line on stderr for Ctrl-C (KeyboardInterrupt); the exit code, 130. Every umi command
    holds its output directory's lock only while it runs and leaves it in a state its rerun
    recognises: the same command continues or redoes the work, and says what it found."""
    print(f"{program(prog)}: interrupted; rerun the same command to continue (or delete its output to start over)", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def run_guarded(prog: str, command: Callable[[], int], errors: tuple[type[BaseException], ...]) -> int:
    """`command()`, with any of `errors` reported by `fail` instead of a traceback, and Ctrl-C by
    `interrupted`."""
    try:
        return command()
    except errors as exc:
        return fail(prog, exc)
    except KeyboardInterrupt:
        return interrupted(prog)


def guard_interrupt(prog: str, command: Callable[[], int]) -> int:
    """`command()`, Ctrl-C reported by `interrupted` (exit 130) instead of a traceback."""
    return run_guarded(prog, command, ())


def _report_interrupts(prog: str) -> None:
    """The last resort for Ctrl-C in a command whose main does not catch it (`guard_interrupt`):
    the interpreter's hook for an uncaught exception prints `interrupted`'s line, not a traceback,
    and exits 130. Run once the stack has unwound (locks released, temporary files removed)."""
    if sys.excepthook is not sys.__excepthook__:
        return

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            return sys.__excepthook__(kind, value, traceback)
        interrupted(prog)
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)

    sys.excepthook = hook


def quiet_third_party_bars() -> None:
    """No tqdm bars from the libraries umi calls (transformers' `Loading weights`, `Writing model
    shards`, datasets' `Map`, huggingface_hub's downloads) when stderr is not a terminal: in a
    pipe or a log file they are a stream of carriage returns, and umi prints progress lines
    there instead. Set before those libraries are imported (they read the environment once)."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        for name in ("transformers.utils.logging", "datasets.utils.logging", "huggingface_hub.utils"):
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "disable_progress_bars"):
                module.disable_progress_bars()
            elif module is not None and hasattr(module, "disable_progress_bar"):
                module.disable_progress_bar()


CONFIG_HELP = "a YAML file of options (`max_steps: 200` or `max-steps: 200`, one key per flag); flags given too override it"


def config_file_values(path: Path, names: Sequence[str]) -> dict[str, Any]:
    """The options of a YAML config file (`--config FILE`, as torchtune, LLaMA-Factory and TRL
    users keep one per run), keys as option names (`max-steps` or `max_steps`); a ValueError for a
    file that is not a mapping or a key that is none of `names`."""
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"--config {path}: not YAML ({' '.join(str(exc).split())})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"--config {path}: expected a mapping of options (max_steps: 200), got {type(loaded).__name__}")
    values = {str(key).replace("-", "_"): value for key, value in loaded.items()}
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=1)
            raise ValueError(f"--config {path}: {key} is not an option of this command" + (f"; did you mean {close[0]}?" if close else ""))
    return values


def apply_config_file(parser: argparse.ArgumentParser, names: Sequence[str], argv: Sequence[str] | None) -> None:
    """`--config FILE`'s values (for the options `names`) become `parser`'s defaults and satisfy
    its required options, so that flags given on the command line override them."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if known.config is None:
        return
    try:
        values = config_file_values(known.config, names)
    except ValueError as exc:
        parser.error(str(exc))
    for action in parser._actions:
        if action.dest in values:
            value = values[action.dest]
            action.default = tuple(value) if isinstance(value, list) else value
            action.required = False


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
    """The one name of `module` in messages: its console script form (`program`), however it was started."""
    return program(module)


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
    return guard_interrupt(f"{package}.{args.command}", lambda: importlib.import_module(f"{package}.{args.command}").main(args.args))


__all__ = ["CONFIG_HELP", "EXIT_INTERRUPTED", "apply_config_file", "config_file_values", "EXIT_USAGE", "HelpFormatter", "METAVARS", "Parser", "SCRIPTS", "add_command", "add_commands", "dispatch",
           "Progress", "fail", "guard_interrupt", "interrupted", "program", "prog_name", "quiet_third_party_bars", "run_guarded", "version"]
