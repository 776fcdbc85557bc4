"""ToolBench's name standardisation, written from its specification (../shared/TOOLCALLING.md §9-10).

ToolBench's inference code, StableToolBench's `/virtual` server and its response cache all key
tools and APIs by these transformed names, so the function names a model sees, the requests a
tool server answers and the cache paths on disk only meet when every party transforms names
identically. They live here once, pure and stdlib-only, for the agent (function names), the
tool server and the cache (lookup keys).
"""

from __future__ import annotations

import re

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


__all__ = [
    "FUNCTION_NAME_CHARS", "RESERVED", "api_function_stem", "change_name", "function_name", "parameter_name",
    "standardize", "standardize_category",
]
