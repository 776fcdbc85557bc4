"""A build in parts: each run of input files is converted and rendered on its own (in a worker
process, or in a shard on another machine) into a `Part`.

What a part carries is already serialised (Arrow tables, JSON lines), so whoever converts it does
the costly work and the writer (`umi_data.building.writer.CorpusWriter`) only copies bytes and cuts
Parquet row groups. How parts run in worker processes and come back is `umi_data.building.workers`;
this module is what a part is and how one is made, the same in every process and every shard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from umi_data.rendering.compat import OfficialWouldFail
from umi_data.core import Reject, RejectReason, Trajectory, UnstorableValueError
from umi_data.rendering.examples import EXAMPLE_ROLES, EXAMPLE_SCHEMA, assign_split, example_id
from umi_data.rendering.render import STALE_INPUT, AlphaUmiCompatRenderer, DefaultRenderer, Rendered, RenderFn
from umi_data.corpus.rows import rows_to_table, trajectory_to_row
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile, Loaded, RecordContext, too_deep

MAX_REJECTS_KEPT = 1000  # in memory, for the CLI's listing; rejects.jsonl has them all


@dataclass
class BuildStats:
    read: int = 0
    accepted: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    turns: Counter[str] = field(default_factory=Counter)
    hallucinated_calls: int = 0

    def add(self, item: Trajectory | Reject) -> None:
        self.read += 1
        if isinstance(item, Reject):
            self.rejected_by_reason[item.reason.value] += 1
            return
        self.accepted += 1
        self.outcomes[item.outcome] += 1
        for turn in item.turns:
            self.turns[turn.role] += 1
            self.hallucinated_calls += turn.role == "caller" and turn.hallucinated

    def merge(self, other: "BuildStats") -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.hallucinated_calls += other.hallucinated_calls
        for mine, theirs in ((self.rejected_by_reason, other.rejected_by_reason), (self.outcomes, other.outcomes), (self.turns, other.turns)):
            mine.update(theirs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "rejected": sum(self.rejected_by_reason.values()),
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "outcomes": {k: self.outcomes[k] for k in ("answer", "give_up", "unfinished")},
            "turns": {k: self.turns[k] for k in ("user", "planner", "caller", "observation", "conclusion")},
            "hallucinated_calls": self.hallucinated_calls,
        }

    @classmethod
    def from_dict(cls, counts: dict[str, Any]) -> "BuildStats":
        return cls(counts["read"], counts["accepted"], Counter(counts["rejected_by_reason"]), Counter(counts["outcomes"]),
                   Counter(counts["turns"]), counts["hallucinated_calls"])


@dataclass(frozen=True)
class PartTask:
    """What a worker needs to convert one run of files (picklable)."""

    source: str
    files: list[InputFile]
    options: dict[str, Any]
    compat: bool
    split_seed: int
    split_ratio: float


@dataclass
class Part:
    """One run of files, converted, rendered and serialised, in input order."""

    stats: BuildStats = field(default_factory=BuildStats)
    inputs: list[bytes] = field(default_factory=list)  # inputs.jsonl lines
    rejects: list[bytes] = field(default_factory=list)  # rejects.jsonl lines
    first_rejects: list[Reject] = field(default_factory=list)
    trajectories: pa.Table | None = None
    examples: dict[str, pa.Table] = field(default_factory=dict)
    example_lines: dict[str, list[bytes]] = field(default_factory=dict)
    splits: dict[str, Counter[str]] = field(default_factory=lambda: {role: Counter() for role in EXAMPLE_ROLES})
    official: dict[str, list[bytes]] = field(default_factory=dict)  # JSON array elements per alpha_umi file
    stale_rows: int = 0  # leading backbone examples whose input is the previous part's (compat)
    fresh_input: str | None = None
    last_input: str | None = None


def convert_part(task: PartTask) -> Part:
    """Read, convert and render `task.files` (runs in a worker process)."""
    part = Part()
    render = AlphaUmiCompatRenderer(STALE_INPUT) if task.compat else DefaultRenderer()
    rows: list[dict[str, Any]] = []
    examples: dict[str, list[dict[str, Any]]] = {role: [] for role in EXAMPLE_ROLES}

    def on_file(file: InputFile, loaded: Loaded) -> None:
        part.inputs.append(orjson.dumps({"file": file.name, "sha256": loaded.sha256, "bytes": len(loaded.data)}) + b"\n")

    for item in read_source(get_source(task.source), task.files, task.options, on_file):
        row, item = _storable(item)
        if row is not None:
            item, output = _rendered(render, item)
        part.stats.add(item)
        if isinstance(item, Reject):
            if len(part.first_rejects) < MAX_REJECTS_KEPT:
                part.first_rejects.append(item)
            part.rejects.append(orjson.dumps(item.model_dump(mode="json")) + b"\n")
            continue
        rows.append(row)
        split = assign_split(item.instruction_id, task.split_seed, task.split_ratio)
        rendered, official = output
        _add_examples(examples, part.splits, item, split, rendered)
        for name, records in official.items():
            part.official.setdefault(name, []).extend(orjson.dumps(record) for record in records)
    part.trajectories = rows_to_table(rows) if rows else None
    for role, role_rows in examples.items():
        part.examples[role] = pa.Table.from_pylist(role_rows, schema=EXAMPLE_SCHEMA)
        part.example_lines[role] = [orjson.dumps(row) + b"\n" for row in role_rows]
    if isinstance(render, AlphaUmiCompatRenderer):
        part.stale_rows, part.fresh_input, part.last_input = render.stale_rows, render.fresh_input, render.last_input
    return part


def _add_examples(examples: dict[str, list[dict[str, Any]]], splits: dict[str, Counter[str]], trajectory: Trajectory,
                  split: str, rendered: list[tuple[str, str, str]]) -> None:
    """Rows of the role corpora, plain dicts in `RoleExample`'s field order (built correct by
    construction, so no model is validated and dumped again per example)."""
    steps: Counter[str] = Counter()
    for role, input_text, target in rendered:
        step = steps[role]
        steps[role] += 1
        splits[role][split] += 1
        examples[role].append({
            "example_id": example_id(trajectory.id, role, step), "trajectory_id": trajectory.id,
            "instruction_id": trajectory.instruction_id, "role": role, "step": step, "input": input_text,
            "target": target, "split": split, "source": trajectory.source,
        })


def _storable(item: Trajectory | Reject) -> tuple[dict[str, Any] | None, Trajectory | Reject]:
    """The Parquet row of a trajectory, or a reject when a value is nested too deeply to store."""
    if isinstance(item, Reject):
        return None, item
    try:
        return trajectory_to_row(item), item
    except TypeError:  # orjson: "Recursion limit reached"
        return None, too_deep(_context(item))


def _rendered(render: RenderFn, trajectory: Trajectory) -> tuple[Trajectory | Reject, Rendered | None]:
    """The trajectory and its rendering; in compat mode, the reject of a trajectory an official
    script would raise on (or whose official text cannot be stored), before anything is kept."""
    try:
        return trajectory, render(trajectory)
    except OfficialWouldFail as exc:
        return _context(trajectory).reject(RejectReason.OFFICIAL_WOULD_FAIL, str(exc)), None
    except UnstorableValueError as exc:
        return _context(trajectory).reject(RejectReason.INVALID_TEXT if exc.text else RejectReason.INVALID_JSON, str(exc)), None


def _context(trajectory: Trajectory) -> RecordContext:
    """Where a trajectory came from, to locate a reject found after conversion."""
    meta = trajectory.meta
    return RecordContext(InputFile(Path(meta.get("file", "")), meta.get("file", "")), meta.get("locator", "$"), "")


__all__ = ["BuildStats", "MAX_REJECTS_KEPT", "Part", "PartTask", "convert_part"]
