"""ToolBench's name standardisation, written from its specification (../shared/TOOLCALLING.md §9-10).

ToolBench's inference code, StableToolBench's `/virtual` server and its response cache all key
tools and APIs by these transformed names, so the function names a model sees, the requests a
tool server answers and the cache paths on disk only meet when every party transforms names
identically. They live here once, pure and stdlib-only, for the agent (function names), the
tool server and the cache (lookup keys and the (category, tool directory, api) address of a request).
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: ToolBench keeps CJK ideographs, ASCII letters and digits, `_` and — because its character
#: class is written with stray `^` separators — a literal caret; everything else becomes `_`.
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5a-zA-Z0-9_^]")
_UNDERSCORE_RUN = re.compile(r"_{2,}")
#: Names that are Python keywords or JSON literals get an `is_` prefix (`change_name`).
RESERVED = frozenset({"from", "class", "return", "false", "true", "id", "and"})
#: OpenAI's function-name limit; ToolBench keeps the *last* 64 characters.
FUNCTION_NAME_CHARS = 64


def standardize(name: str) -> str:
    """A tool, API or parameter name as ToolBench stores it: unkept characters to `_`, runs of
    `_` collapsed, lower-cased, `_` stripped at both ends, `get_` before a leading digit."""
    text = _UNDERSCORE_RUN.sub("_", _NOT_KEPT.sub("_", name)).lower().strip("_")
    if text and text[0].isdigit():
        return "get_" + text
    return text


def change_name(name: str) -> str:
    """`is_<name>` for a reserved word, else the name (applied to API and parameter names after
    `standardize`, never to tool names)."""
    return "is_" + name if name in RESERVED else name


def standardize_category(category: str) -> str:
    """A category as a directory name: spaces, commas and slashes to `_`, then one left-to-right
    pass replacing `__` by `_` ("News, Media" -> "News_Media"; case is kept)."""
    return category.replace(" ", "_").replace(",", "_").replace("/", "_").replace("__", "_")


def api_function_stem(api_name: str) -> str:
    """The pure API name of a function: `change_name(standardize(api_name))`."""
    return change_name(standardize(api_name))


def function_name(api_name: str, standard_tool_name: str) -> str:
    """The function a model calls: `<pure api name>_for_<standard tool name>`, its last 64
    characters (so a long name loses its *start*)."""
    return f"{api_function_stem(api_name)}_for_{standard_tool_name}"[-FUNCTION_NAME_CHARS:]


def parameter_name(name: str) -> str:
    """A parameter name as a function schema shows it: `change_name(standardize(name))`."""
    return change_name(standardize(name))


class Address(NamedTuple):
    """Where a `/virtual` request points: the cache's category, tool directory and api file stem."""

    category: str
    tool_dir: str
    api: str


def request_address(category: str, tool_name: str, api_name: str) -> Address:
    """The (category, tool directory, api) StableToolBench's server derives from a request
    before it opens `{category}/{tool directory}/{api}.json` (umi looks the triple up in an index,
    so a name in a request never reaches the file system).

    The api is `change_name(standardize(api_name))` cut before its first `_for_<tool_name>` (so a
    full function name works too); a tool name already ending in `_for_<category>` is the
    directory itself, any other is standardised and given that suffix."""
    std_category = standardize_category(category)
    api = api_function_stem(api_name).split(f"_for_{tool_name}")[0]
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


__all__ = [
    "FUNCTION_NAME_CHARS", "RESERVED", "Address", "api_function_stem", "change_name", "function_name", "parameter_name",
    "request_address", "standardize", "standardize_category", "tool_dir_name", "tool_of_dir",
]
