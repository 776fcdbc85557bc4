"""Role examples, the rows of the global and local corpora, and instruction-level splits.

A role example is one `(input, target)` pair for one role (`backbone` for the global corpus;
`planner`, `caller`, `summarizer` for the local ones), keyed back to its trajectory and its
instruction. Every example carries `split` (A or B), a seeded hash of its `instruction_id`, so
the paper's instruction-reuse variants are selections of one corpus, never copies: all
examples of one instruction always land in the same split.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from umi_data.building.fields import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED

Role = Literal["backbone", "planner", "caller", "summarizer"]
EXAMPLE_ROLES: tuple[str, ...] = ("backbone", "planner", "caller", "summarizer")
#: Where each role's corpus lives inside a corpus directory (ARCHITECTURE.md, "Corpus directory").
ROLE_PATHS = {
    "backbone": "global/backbone",
    "planner": "local/planner",
    "caller": "local/caller",
    "summarizer": "local/summarizer",
}


class RoleExample(BaseModel):
    """One training example of one role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    example_id: str = Field(description="`<trajectory_id>/<role>/<step>`, unique in a corpus")
    trajectory_id: str
    instruction_id: str
    role: Role
    step: int = Field(ge=0, description="0-based position of this example among its trajectory's examples of this role")
    input: str
    target: str
    split: Literal["A", "B"]
    source: str


EXAMPLE_SCHEMA = pa.schema(
    [
        pa.field(name, pa.int32() if name == "step" else pa.string(), nullable=False)
        for name in RoleExample.model_fields
    ]
)


def assign_split(instruction_id: str, seed: int = DEFAULT_SPLIT_SEED, ratio: float = DEFAULT_SPLIT_RATIO) -> Literal["A", "B"]:
    """A for a `ratio` share of instructions, B for the rest, stable for a given seed."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"split ratio must be between 0 and 1, got {ratio}")
    digest = hashlib.sha256(f"{seed}\x00{instruction_id}".encode()).digest()
    return "A" if int.from_bytes(digest[:8], "big") < ratio * 2**64 else "B"


def text_lengths(examples: pa.Table | pa.RecordBatch) -> dict[str, pa.Array]:
    """`input_chars` and `target_chars` (int32, in characters) of a table or batch of examples:
    what the card's length statistics and plot are made of."""
    import pyarrow.compute as pc

    lengths = {f"{name}_chars": pc.utf8_length(examples.column(name)).cast(pa.int32()) for name in ("input", "target")}
    # One array each: a table's column may have no chunk at all, whose type a list of chunks loses.
    return {name: values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values for name, values in lengths.items()}


#: chunks of lengths joined into one (`append_lengths`): a part adds a few hundred examples, and
#: each chunk kept apart costs its Arrow and Python objects, more than its 8 bytes an example.
LENGTH_CHUNKS_JOINED = 256


def append_lengths(chunks: list[dict[str, pa.Array]], lengths: dict[str, pa.Array]) -> None:
    """Append one table's `text_lengths` to `chunks`, joining them into one chunk every
    `LENGTH_CHUNKS_JOINED`: memory stays 8 bytes an example, not an object per part."""
    chunks.append(lengths)
    if len(chunks) >= LENGTH_CHUNKS_JOINED:
        chunks[:] = [{name: pa.concat_arrays([chunk[name] for chunk in chunks]) for name in lengths}]


def example_id(trajectory_id: str, role: str, step: int) -> str:
    return f"{trajectory_id}/{role}/{step}"
