"""ToolBench's name standardisation, and where StableToolBench files a request (../shared/TOOLCALLING.md §10-11).

Written from the description, not copied: `standardize` keeps CJK, ASCII letters, digits, `_`
and (a quirk of the original character class) `^`; `change_name` prefixes seven Python words;
`standardize_category` replaces spaces, commas and slashes, then halves `__` once. The request
address is the (category, tool directory, api) triple StableToolBench's server derives before
it opens `{category}/{tool directory}/{api}.json`; umi looks the same triple up in an index, so a
name in a request never reaches the file system.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_NOT_KEPT = re.compile("[^\u4e00-\u9fa5a-zA-Z0-9_^]")
_UNDERSCORES = re.compile("_{2,}")
_RENAMED = frozenset({"from", "class", "return", "false", "true", "id", "and"})


def standardize(name: str) -> str:
    """ToolBench's `standardize`: other characters become `_`, runs of `_` collapse, lower case,
    no leading or trailing `_`, and `get_` before a leading digit."""
    text = _UNDERSCORES.sub("_", _NOT_KEPT.sub("_", name)).lower().strip("_")
    return f"get_{text}" if text[:1].isdigit() else text


def change_name(name: str) -> str:
    """`is_<name>` for the seven names ToolBench renames (Python keywords and `id`)."""
    return f"is_{name}" if name in _RENAMED else name


def standardize_category(category: str) -> str:
    """StableToolBench's category directory: space, comma and slash become `_`, then one
    left-to-right pass turns `__` into `_` (so "a___b" keeps one double underscore)."""
    return category.replace(" ", "_").replace(",", "_").replace("/", "_").replace("__", "_")


class Address(NamedTuple):
    """Where a `/virtual` request points: the cache's category, tool directory and api file stem."""

    category: str
    tool_dir: str
    api: str


def request_address(category: str, tool_name: str, api_name: str) -> Address:
    """The (category, tool directory, api) StableToolBench's server derives from a request.

    The api is `change_name(standardize(api_name))` cut before its first `_for_<tool_name>` (so a
    full function name works too); a tool name already ending in `_for_<category>` is the
    directory itself, any other is standardised and given that suffix."""
    std_category = standardize_category(category)
    api = change_name(standardize(api_name)).split(f"_for_{tool_name}")[0]
    suffix = f"_for_{std_category}"
    tool_dir = tool_name if tool_name.endswith(suffix) else standardize(tool_name) + suffix
    return Address(std_category, tool_dir, api)


def tool_dir_name(tool: str, category: str) -> str:
    """The cache directory of a tool (its standard name) in a category; just the standard name
    when the category is unknown ("")."""
    base = standardize(tool)
    return f"{base}_for_{standardize_category(category)}" if category else base


def tool_of_dir(tool_dir: str, category: str) -> str:
    """The tool part of a cache directory name (the directory itself if it lacks the suffix)."""
    suffix = f"_for_{category}"
    return tool_dir[: -len(suffix)] if category and tool_dir.endswith(suffix) and len(tool_dir) > len(suffix) else tool_dir


__all__ = ["Address", "change_name", "request_address", "standardize", "standardize_category", "tool_dir_name", "tool_of_dir"]
