"""Reading and writing the JSON files of static evaluation (test sets, predictions, metrics).

Stdlib only, so `python -m umi_agent.evaluate` starts fast and never pulls in the data stack.
Every failure is an `InputFileError` whose message is one line naming the file and what was
expected: the CLIs print it and exit 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InputFileError(ValueError):
    """A file that cannot be used as given; the message names the file and the problem."""


def read_json(path: Path, what: str) -> Any:
    """Parse `path` as JSON; `what` says what the file should be, for the error message."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file (expected {what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read {what}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected {what}") from None
    except RecursionError:
        raise InputFileError(f"{path}: nested too deeply to read; expected {what}") from None
    except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise InputFileError(f"{path}: not usable JSON ({str(exc).split(';')[0]}); expected {what}") from None
    try:
        encode_json(value)
    except UnicodeEncodeError:
        raise InputFileError(f"{path}: holds a lone surrogate escape (e.g. \\ud800), which is not Unicode text; expected {what}") from None
    except RecursionError:
        raise InputFileError(f"{path}: nested too deeply to use; expected {what}") from None
    return value


def read_json_list(path: Path, what: str) -> list[Any]:
    """A non-empty JSON array (test sets and predictions files are arrays of objects)."""
    value = read_json(path, what)
    if not isinstance(value, list):
        raise InputFileError(f"{path}: expected {what} (a JSON array), got {json_type(value)}")
    if not value:
        raise InputFileError(f"{path}: the array is empty; expected {what}")
    return value


def encode_json(value: Any) -> bytes:
    """Indented UTF-8 JSON with a final newline (raises on a lone surrogate or a value nested
    too deeply, before anything is written)."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_json(path: Path, value: Any) -> None:
    """`encode_json(value)`, written to a temporary name and renamed into place so that a reader
    never sees half a file (umi_data.plumbing.outdir's one atomic writer, imported only to write)."""
    write_files({Path(path): encode_json(value)})


def write_files(contents: dict[Path, bytes]) -> None:
    """Several files whose bytes are all ready: nothing is half-written when one cannot be encoded."""
    from umi_data.plumbing.outdir import atomic_open

    for path, data in contents.items():
        with atomic_open(path) as handle:
            handle.write(data)


def scrub_text(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (and keys) replaced by U+FFFD: a model
    can emit any string, and a JSON or UTF-8 writer must never stop on one. Valid text, pairs
    included, is unchanged."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [scrub_text(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_text(v) for v in value)
    if isinstance(value, dict):
        return {scrub_text(k): scrub_text(v) for k, v in value.items()}
    return value


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
