"""Source formats by CLI name. Adding a source to umi: one module with a `Source`, one line in
`CATALOG`. Adding one of your own without editing umi: `register_source` (for `build_corpus`
from Python; the command line lists the catalogue only). examples/custom_source.py shows one.

Light on purpose: `python -m umi_data --help` lists the sources from `CATALOG` without importing
them (they import pydantic and jsonschema); `SOURCES` and the reading functions load on first use.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, NamedTuple


class CatalogEntry(NamedTuple):
    module: str  # umi_data.sources.<module>
    attribute: str  # the module's `Source`
    description: str


CATALOG: dict[str, CatalogEntry] = {
    "toolbench": CatalogEntry("toolbench", "SOURCE", "ToolBench answer files (data/answer/G*_answer/*.json)"),
    "alpha-umi-stage1": CatalogEntry("alpha_umi", "STAGE1", "α-UMi stage-1 files (raw_data_stage_1.json: tools, instruction, chains)"),
    "alpha-umi-stage2": CatalogEntry("alpha_umi", "STAGE2", "α-UMi stage-2 files and static test sets (tools, instruction, conversations)"),
    "toolalpaca": CatalogEntry("toolalpaca", "SOURCE", "ToolAlpaca API entries with Instances (one trajectory per instance)"),
    "agent-run": CatalogEntry("agent_run", "SOURCE", "umi agent runs (episodes.json: a JSON array of umi Trajectory documents, written by umi_agent)"),
    "openai-messages": CatalogEntry("openai_messages", "SOURCE", "OpenAI-style chat records with tools (messages + tools; fine-tuning JSONL, TRL, xLAM conversions)"),
    "sharegpt-tools": CatalogEntry("sharegpt_tools", "SOURCE", "ShareGPT conversations with function_call / observation turns and a tools column (LLaMA-Factory, Glaive)"),
    "hermes": CatalogEntry("hermes", "SOURCE", "Hermes function-calling ChatML (<tools>, <tool_call>, <tool_response> tags; conversations or text)"),
}
_FROM_BASE = ("InputFile", "InputPathError", "Source", "discover_files", "iter_files", "read_source")


#: Sources added with `register_source`: name -> (source, description, schema or None).
_REGISTERED: dict[str, tuple[Any, str, dict[str, Any] | None]] = {}


class UnknownSourceError(ValueError):
    pass


def get_source(name: str) -> Any:
    if name in _REGISTERED:
        return _REGISTERED[name][0]
    try:
        return _sources()[name]
    except KeyError:
        names = [*CATALOG, *_REGISTERED]
        raise UnknownSourceError(f"unknown source {name!r}; choose one of: {', '.join(names)}") from None


def register_source(source: Any, description: str, schema: dict[str, Any] | None = None) -> None:
    """Make `source` (a `umi_data.sources.base.Source`) a source that `build_corpus` and
    `read_source` know by its name, for this process and the build's worker processes.

    `schema` is the JSON Schema of the raw format (its `$defs/record` one record), registered
    under `source.schema`; without it `source.schema` must name a schema umi ships
    (`umi_data/schemas/sources`). A name of the built-in catalogue is refused (`ValueError`), so
    a corpus's `source` option always means one format; registering the same name again
    replaces the earlier registration. The source's `convert` must be importable by name (a
    module-level function) when the build runs with workers: they are separate processes.
    """
    from umi_data.sources.base import register_schema

    if source.name in CATALOG:
        raise ValueError(f"source name {source.name!r} is umi's own; choose another")
    if schema is not None:
        register_schema(source.schema, schema)
    _REGISTERED[source.name] = (source, description, schema)


def registered_sources() -> list[tuple[Any, str, dict[str, Any] | None]]:
    """Every `register_source` call's arguments, in order (what a worker process re-registers)."""
    return list(_REGISTERED.values())


def description_of(name: str) -> str:
    return _REGISTERED[name][1] if name in _REGISTERED else CATALOG[name].description


@cache
def _sources() -> dict[str, Any]:
    sources = {}
    for key, entry in CATALOG.items():
        sources[key] = getattr(importlib.import_module(f"umi_data.sources.{entry.module}"), entry.attribute)
        if sources[key].name != key:
            raise RuntimeError(f"CATALOG entry {key!r} names the source {sources[key].name!r}")
    return sources


def __getattr__(name: str) -> Any:
    if name == "SOURCES":
        return _sources()
    if name in _FROM_BASE:
        return getattr(importlib.import_module("umi_data.sources.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CATALOG", "SOURCES", "UnknownSourceError", "get_source", "register_source", "registered_sources", *_FROM_BASE]
