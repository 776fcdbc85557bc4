"""umi's own agent runs (`episodes.json`: a JSON array of `Trajectory` documents, written by
umi_agent), so agent traces go through `build`, DuckDB and the corpus renderers like any source.

The documents are umi's canonical record already: each is validated by the `Trajectory` model
(a bad one becomes a reject naming the field) and keeps its id.

The log's writer (`umi_agent.run.EpisodeLog`) appends each episode as it finishes and closes the
array last, so a run killed mid-way (SIGKILL, out of memory, power loss) leaves an array never
closed, maybe ending inside a half-written episode. Such a file still yields every complete
episode, with the ids a closed log would give them; the cut-off one is one `truncated_json`
reject at its `$[N]`. Anything else that is not JSON is rejected whole, as in every source.
"""

from __future__ import annotations

import json
import re
from typing import Any

from umi_data.core import Reject, RejectReason, Trajectory
from umi_data.sources.base import (
    UTF8_BOM, Converted, InputFile, Loaded, RecordContext, Salvaged, Source, error_position, is_truncation, refuse_constant,
)

_SPACE = re.compile(r"[ \t\n\r]*")


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    return Trajectory.model_validate(record)


def salvage_unclosed(file: InputFile, loaded: Loaded) -> Salvaged | None:
    """The complete records of an array that stops before its `]` (only between or inside its
    records, never anywhere else), and the reject of the record it stops in; None for any
    other file, whose reject stands."""
    text = _text_before_cut(loaded.data.removeprefix(UTF8_BOM))
    if text is None:
        return None
    position = _SPACE.match(text).end()
    if not text.startswith("[", position):
        return None
    decoder = json.JSONDecoder(parse_constant=refuse_constant)
    records: list[Any] = []
    position = _SPACE.match(text, position + 1).end()
    while position < len(text):
        try:
            record, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            return (records, _cut_record(file, len(records), exc)) if is_truncation(text, exc) else None
        except (ValueError, RecursionError):  # NaN or Infinity, nesting too deep: as the whole file says
            return None
        records.append(record)
        position = _SPACE.match(text, end).end()
        if position == len(text):
            break
        if text[position] != ",":
            return None  # `]` would have closed it: something else follows the array
        position = _SPACE.match(text, position + 1).end()
    return records, None


def _text_before_cut(body: bytes) -> str | None:
    """The bytes as text, without a last character cut inside its UTF-8 sequence; None when the
    bytes are not UTF-8 elsewhere."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end != len(body) or exc.reason != "unexpected end of data":
            return None
        return body[: exc.start].decode("utf-8")


def _cut_record(file: InputFile, index: int, error: json.JSONDecodeError) -> Reject:
    return Reject(
        source_file=file.name, locator=f"$[{index}]", reason=RejectReason.TRUNCATED_JSON,
        detail=f"the episode log stops inside this record and its array was never closed (a run killed while "
               f"writing it?): {error.msg} at {error_position(error)}; the {index} record(s) before it are read",
    )


SOURCE = Source(
    name="agent-run",
    schema="agent_run.schema.json",
    records_per_file="list",
    convert=convert,
    salvage=salvage_unclosed,
)
