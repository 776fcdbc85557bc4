"""umi's own agent runs (`episodes.json`: a JSON array of `Trajectory` documents, written by
umi_agent), so agent traces go through `build`, DuckDB and the corpus renderers like any source.

The documents are umi's canonical record already: each is validated by the `Trajectory` model
(a bad one becomes a reject naming the field) and keeps its id.
"""

from __future__ import annotations

from typing import Any

from umi_data.core import Trajectory
from umi_data.sources.base import Converted, RecordContext, Source


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    return Trajectory.model_validate(record)


SOURCE = Source(
    name="agent-run",
    schema="agent_run.schema.json",
    records_per_file="list",
    convert=convert,
)
