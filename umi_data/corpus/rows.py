"""The Parquet layout of `trajectories.parquet`, derived from the core models.

Turns are a list of one flat struct holding the union of every turn type's fields (`role` says
which apply; the others are null), so SQL reads them naturally: `unnest(turns)` then
`turn.role`, `turn.name`, `turn.thought`. Free-form JSON values (`meta`, a tool's `parameters`,
a call's `arguments`) are stored as Arrow's canonical JSON extension type: DuckDB reads them as
its JSON type (`meta->>'group'`), HF datasets decodes them to Python objects, and polars shows
them as `ext[arrow.json]` (use `pl.col("meta").ext.storage()` for the text).

The schema is built from the pydantic models, never inferred from the data, so every file has
the same columns whatever its first row holds.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Iterator

import orjson
import pyarrow as pa

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    Trajectory,
    UserTurn,
)

JSON = pa.json_(pa.string())
TURN_MODELS = {m.model_fields["role"].default: m for m in (UserTurn, PlannerTurn, CallerTurn, ObservationTurn, ConclusionTurn)}


def _arrow_type(annotation: Any) -> pa.DataType:
    """Arrow type of a (possibly optional) model field: str/Literal → string, bool → bool,
    dict → JSON text."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _arrow_type(args[0])
    if annotation is bool:
        return pa.bool_()
    if annotation is str or origin is typing.Literal:
        return pa.string()
    if annotation is dict or origin is dict:
        return JSON
    raise TypeError(f"no Arrow type for model field annotation {annotation!r}")


def _turn_fields() -> list[pa.Field]:
    fields: dict[str, pa.DataType] = {}
    for model in TURN_MODELS.values():
        for name, info in model.model_fields.items():
            arrow = _arrow_type(info.annotation)
            if fields.setdefault(name, arrow) != arrow:
                raise TypeError(f"turn field {name!r} has two Arrow types across turn roles")
    return [pa.field(name, arrow) for name, arrow in fields.items()]


TOOL_TYPE = pa.struct([pa.field("name", pa.string()), pa.field("description", pa.string()), pa.field("parameters", JSON)])
TURN_TYPE = pa.struct(_turn_fields())
TRAJECTORY_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("instruction", pa.string(), nullable=False),
        pa.field("instruction_id", pa.string(), nullable=False),
        pa.field("tools", pa.list_(TOOL_TYPE)),
        pa.field("turns", pa.list_(TURN_TYPE)),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("meta", JSON),
    ]
)
_JSON_TURN_FIELDS = [f.name for f in TURN_TYPE if f.type == JSON]


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def trajectory_to_row(trajectory: Trajectory) -> dict[str, Any]:
    """A plain dict in the Parquet layout (JSON fields as text). Built from the models' fields
    as they are (a `model_dump` would deep-copy every tool schema only to serialise it here)."""
    row = dict(trajectory.__dict__)
    row["tools"] = [{**tool.__dict__, "parameters": _dumps(tool.parameters)} for tool in trajectory.tools]
    row["turns"] = [_turn_row(turn.__dict__) for turn in trajectory.turns]
    row["meta"] = _dumps(trajectory.meta)
    return row


def _turn_row(fields: dict[str, Any]) -> dict[str, Any]:
    row = dict(fields)
    for name in _JSON_TURN_FIELDS:
        if name in row:
            row[name] = _dumps(row[name])
    return row


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows from `trajectory_to_row` as a table of exactly `TRAJECTORY_SCHEMA`."""
    # pyarrow cannot convert Python values straight into extension types: convert into the
    # storage types in one native pass, then wrap the JSON columns.
    storage = pa.Table.from_pylist(rows, schema=_STORAGE_SCHEMA)
    columns = [_as_type(storage.column(i).combine_chunks(), field.type) for i, field in enumerate(TRAJECTORY_SCHEMA)]
    return pa.Table.from_arrays(columns, schema=TRAJECTORY_SCHEMA)


def _storage_type(arrow_type: pa.DataType) -> pa.DataType:
    """`arrow_type` with every extension type replaced by its storage type."""
    if isinstance(arrow_type, pa.BaseExtensionType):
        return arrow_type.storage_type
    if pa.types.is_list(arrow_type):
        return pa.list_(pa.field(arrow_type.value_field.name, _storage_type(arrow_type.value_type)))
    if pa.types.is_struct(arrow_type):
        return pa.struct([pa.field(f.name, _storage_type(f.type), f.nullable) for f in arrow_type])
    return arrow_type


def _as_type(array: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """A storage-typed `array` wrapped into `arrow_type` (same buffers, extension types added)."""
    if array.type == arrow_type:
        return array
    if isinstance(arrow_type, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(arrow_type, array)
    if pa.types.is_list(arrow_type):
        values = _as_type(array.values, arrow_type.value_type)
        return pa.ListArray.from_arrays(array.offsets, values, type=pa.list_(arrow_type.value_field), mask=array.is_null())
    if pa.types.is_struct(arrow_type):
        children = [_as_type(array.field(i), f.type) for i, f in enumerate(arrow_type)]
        return pa.StructArray.from_arrays(children, fields=list(arrow_type), mask=array.is_null())
    raise TypeError(f"cannot wrap {array.type} as {arrow_type}")


_STORAGE_SCHEMA = pa.schema([pa.field(f.name, _storage_type(f.type), f.nullable) for f in TRAJECTORY_SCHEMA])


def row_to_document(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row back as the JSON document of `schemas/trajectory.schema.json`: JSON text
    parsed, and each turn keeping only its own role's fields."""
    doc = dict(row)
    doc["tools"] = [{**tool, "parameters": orjson.loads(tool["parameters"])} for tool in row["tools"]]
    doc["turns"] = [_turn_document(turn) for turn in row["turns"]]
    doc["meta"] = orjson.loads(row["meta"]) if row["meta"] is not None else {}
    return doc


def _turn_document(turn: dict[str, Any]) -> dict[str, Any]:
    model = TURN_MODELS[turn["role"]]
    # A field missing from an older file's turns takes the model's default.
    out = {name: turn[name] for name in model.model_fields if name in turn}
    for name in _JSON_TURN_FIELDS:
        if name in out and out[name] is not None:
            out[name] = orjson.loads(out[name])
    return out


def read_trajectories(path: str, batch_size: int = 1024) -> Iterator[Trajectory]:
    """Stream the trajectories of a `trajectories.parquet` file back as validated models."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield Trajectory.model_validate(row_to_document(row))
