"""Cache keys of a tool input: StableToolBench's exact key and umi's canonical one.

StableToolBench keys a cached response by `str(tool_input)`, the Python repr of the input as
`json.loads` read it (`{'q': 'x', 'n': 1}`: single quotes, `True`/`None`, key order as sent).
That exact key is kept, so a request answers exactly as the official server would. Because the
same arguments in another key order (or another spacing or quoting) would miss it, every entry
also has a canonical key: compact JSON with keys sorted at every level and non-ASCII kept.
Types are not merged (`1`, `1.0` and `"1"` stay three inputs): an api may well treat them apart.

The exact keys of a StableToolBench cache file are reprs, read back with `ast.literal_eval`
under a length bound (literal_eval evaluates only literals, but deep nesting can exhaust the
stack, so that is caught too); a key that does not read back keeps only its exact form.
"""

from __future__ import annotations

import ast
import json
from typing import Any

#: Longest repr key parsed for its canonical form (a longer one still matches exactly).
MAX_LITERAL_CHARS = 100_000
#: What a key that is not a literal parses to.
UNPARSED = object()


def exact_key(tool_input: Any) -> str:
    """StableToolBench's key of an input already parsed from JSON: `str(tool_input)`."""
    return str(tool_input)


def canonical_key(tool_input: Any) -> str | None:
    """Compact JSON with sorted keys, or None for a value JSON cannot write (a tuple key, a set)."""
    try:
        return json.dumps(tool_input, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None


def parse_repr_key(key: str) -> Any:
    """A cache file's `str(dict)` key back as a value, or `UNPARSED`."""
    if len(key) > MAX_LITERAL_CHARS:
        return UNPARSED
    try:
        return ast.literal_eval(key)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNPARSED


def keys_of_repr(key: str) -> tuple[str, str | None]:
    """(exact, canonical) keys of a key read from a StableToolBench cache file."""
    value = parse_repr_key(key)
    return key, (None if value is UNPARSED else canonical_key(value))


def parse_tool_input(tool_input: Any) -> Any:
    """A request's `tool_input` as StableToolBench's server reads it: a string through Python's
    `json.loads` (any JSON value; `""` is `{}`), a dict as it is; `UNPARSED` otherwise."""
    if isinstance(tool_input, dict):
        return tool_input
    if not isinstance(tool_input, str):
        return UNPARSED
    try:
        return json.loads(tool_input)
    except (ValueError, RecursionError):
        return {} if tool_input == "" else UNPARSED


def keys_of_input(tool_input: Any) -> tuple[str, str | None] | None:
    """(exact, canonical) keys of a request's `tool_input`, or None when it does not parse."""
    value = parse_tool_input(tool_input)
    if value is UNPARSED:
        return None
    try:
        return exact_key(value), canonical_key(value)
    except RecursionError:
        return None


__all__ = ["MAX_LITERAL_CHARS", "UNPARSED", "canonical_key", "exact_key", "keys_of_input", "keys_of_repr", "parse_repr_key", "parse_tool_input"]
