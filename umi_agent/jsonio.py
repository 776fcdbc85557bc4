"""Reading and writing the JSON files of static evaluation (test sets, predictions, metrics).

Stdlib only, so `python -m umi_agent.evaluate` starts fast and never pulls in the data stack.
Every failure is an `InputFileError` whose message is one line naming the file and what was
expected: the CLIs print it and exit 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
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
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected {what}") from None


def read_json_list(path: Path, what: str) -> list[Any]:
    """A non-empty JSON array (test sets and predictions files are arrays of objects)."""
    value = read_json(path, what)
    if not isinstance(value, list):
        raise InputFileError(f"{path}: expected {what} (a JSON array), got {json_type(value)}")
    if not value:
        raise InputFileError(f"{path}: the array is empty; expected {what}")
    return value


def write_json(path: Path, value: Any) -> None:
    """Indented JSON with a final newline, written to a temporary name and renamed into place
    so that a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
