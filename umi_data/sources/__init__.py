"""Source formats by CLI name. Adding a source: one module with a `Source`, one line here."""

from __future__ import annotations

from umi_data.sources import agent_run, alpha_umi, toolalpaca, toolbench
from umi_data.sources.base import InputFile, InputPathError, Source, discover_files, read_source

SOURCES: dict[str, Source] = {
    source.name: source for source in (toolbench.SOURCE, alpha_umi.STAGE1, alpha_umi.STAGE2, toolalpaca.SOURCE, agent_run.SOURCE)
}


class UnknownSourceError(ValueError):
    pass


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownSourceError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "InputFile", "InputPathError", "Source", "UnknownSourceError", "discover_files", "get_source", "read_source"]
