"""Which category and api a ToolBench function name belongs to.

Answer files, α-UMi files and agent runs name a call `{api}_for_{tool}` (cut to its last 64
characters) and say the tool in the function description (`This is the subfunction for tool
"X"`, or the synthetic world's `API of the "X" tool`), but never the category. A `Catalog` read
from any ToolBench tool list supplies it: query files (`api_list` items with `category_name`,
`tool_name`, `api_name`: ToolBench's `instruction/*.json`, StableToolBench's
`solvable_queries`) or a tool directory laid out `{Category}/{tool}.json` (`toolenv/tools`,
`toolenv/response_examples`). Without one, entries are filed under the unknown category "",
which a request of any category falls back to (store.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from umi_data.sources.toolbench_names import change_name, standardize

#: ToolBench's function names are cut to their last 64 characters.
FUNCTION_NAME_CHARS = 64
_TOOL_IN_DESCRIPTION = re.compile(r'(?:subfunction for tool|API of the) "([^"]+)"')
#: A trajectory meta key an agent run may write: {function name: {category, tool, api}}.
FUNCTIONS_META = "toolbench_functions"


@dataclass
class Catalog:
    """Standard tool name -> category, and -> its pure api names (to undo the 64-character cut)."""

    categories: dict[str, str] = field(default_factory=dict)
    apis: dict[str, set[str]] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)

    def add(self, category: str, tool: str, api: str | None = None) -> None:
        tool = standardize(tool)
        known = self.categories.setdefault(tool, category)
        if known != category:
            self.ambiguous.add(tool)
        if api is not None:
            self.apis.setdefault(tool, set()).add(change_name(standardize(api)))

    def category(self, tool: str) -> str:
        tool = standardize(tool)
        return "" if tool in self.ambiguous else self.categories.get(tool, "")

    def full_api(self, tool: str, api: str, function: str) -> str:
        """The api whose function name, cut to 64 characters, is `function` (else `api`)."""
        if len(function) < FUNCTION_NAME_CHARS:
            return api
        matches = [a for a in sorted(self.apis.get(standardize(tool), ())) if f"{a}_for_{tool}"[-FUNCTION_NAME_CHARS:] == function]
        return matches[0] if len(matches) == 1 else api


def read_catalog(paths: Iterable[str | Path]) -> Catalog:
    """A catalog from query files (JSON lists with `api_list`) and `{Category}/{tool}.json` directories."""
    catalog = Catalog()
    for path in map(Path, paths):
        for file in sorted(path.glob("*/*.json")) if path.is_dir() else []:
            catalog.add(file.parent.name, file.stem)
            _add_tool_file(catalog, file)
        for query_file in sorted(path.glob("*.json")) if path.is_dir() else [path]:
            for item in _api_lists(query_file):
                if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("category_name", "tool_name")):
                    catalog.add(item["category_name"], item["tool_name"], item.get("api_name") if isinstance(item.get("api_name"), str) else None)
    return catalog


def _add_tool_file(catalog: Catalog, file: Path) -> None:
    """The api names of a `toolenv/tools` document (its `api_list[].name`), when it has them."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return
    for api in document.get("api_list", []) if isinstance(document, dict) else []:
        if isinstance(api, dict) and isinstance(api.get("name"), str):
            catalog.add(file.parent.name, file.stem, api["name"])


def _api_lists(path: Path) -> Iterable[Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CatalogError(f"--categories {path}: not a readable JSON query file ({type(exc).__name__})") from None
    queries = document if isinstance(document, list) else [document]
    for query in queries:
        if isinstance(query, dict) and isinstance(query.get("api_list"), list):
            yield from query["api_list"]


class CatalogError(ValueError):
    """A --categories file that cannot be read (a usage error)."""


def split_function(function: str, description: str) -> tuple[str, str] | None:
    """(tool, api) of a function name: the tool from the description when the name ends with
    `_for_<tool>`, else the name cut at its first `_for_` (as StableToolBench's server cuts);
    None for a name with no `_for_` at all."""
    found = _TOOL_IN_DESCRIPTION.search(description)
    if found:
        suffix = f"_for_{found.group(1)}"
        if function.endswith(suffix) and len(function) > len(suffix):
            return found.group(1), function[: -len(suffix)]
    api, sep, tool = function.partition("_for_")
    return (tool, api) if sep and api and tool else None


__all__ = ["Catalog", "CatalogError", "FUNCTIONS_META", "read_catalog", "split_function"]
