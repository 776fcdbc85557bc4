"""`build`: source files → a corpus directory (trajectories.parquet, rejects.jsonl, manifest.json).

One pass, streaming: each record becomes a trajectory row or a reject line as it is read, so
memory is bounded by a Parquet row group, not by the input. Accepted + rejected always equals
what was read, and the manifest (written last) says so.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import orjson
from pydantic import BaseModel, ConfigDict, Field

import umi_data
from umi_data.card import write_card
from umi_data.core import Reject, Trajectory
from umi_data.corpus import MANIFEST, RoleCorpusWriter, require_corpus
from umi_data.examples import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED
from umi_data.render import AlphaUmiCompatRenderer, DefaultRenderer
from umi_data.rows import TRAJECTORY_SCHEMA, rows_to_table, trajectory_to_row
from umi_data.sources import discover_files, get_source, read_source
from umi_data.sources.base import InputFile, InputPathError, RecordContext, load_json, too_deep
from umi_data.write import JsonlWriter, ParquetBatchWriter, atomic_open, atomic_path, file_entry, write_json

TRAJECTORIES = "trajectories.parquet"
REJECTS = "rejects.jsonl"
MAX_REJECTS_KEPT = 1000  # in memory, for the CLI's listing; rejects.jsonl has them all


class BuildConfig(BaseModel):
    """What `python -m umi_data build` was asked to do (recorded in the manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="source format name (see `python -m umi_data build --help`)")
    inputs: list[str] = Field(min_length=1, description="input files or directories, as given")
    exclude_test_ids: list[str] = Field(
        default_factory=list,
        description="ToolBench test_query_ids files or directories ({group}_*.json objects keyed by query id)",
    )
    strict: bool = Field(default=False, description="exit non-zero when any record is rejected")
    compat: Literal["alpha-umi"] | None = Field(
        default=None, description="reproduce the official alpha-UMi preprocessing exactly (quirks included) and write alpha_umi/"
    )
    split_seed: int = Field(default=DEFAULT_SPLIT_SEED, description="seed of the A/B instruction split")
    split_ratio: float = Field(default=DEFAULT_SPLIT_RATIO, ge=0.0, le=1.0, description="share of instructions in split A")


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


@dataclass
class BuildResult:
    out: Path
    manifest: dict[str, Any]
    rejects: list[Reject]  # the first MAX_REJECTS_KEPT


class ExclusionListError(ValueError):
    """A test-id exclusion file that cannot be used (a usage error, not a reject)."""


def load_excluded_query_ids(paths: Sequence[str]) -> tuple[frozenset[tuple[str, str]], list[dict[str, Any]]]:
    """(group, query id) pairs from ToolBench `test_query_ids/{group}_*.json` files, and their
    manifest entries. The group is the file name's prefix, because query ids restart per group."""
    if not paths:
        return frozenset(), []
    pairs: set[tuple[str, str]] = set()
    entries = []
    for file in discover_files(paths):
        loaded = load_json(file)
        if loaded.reject is not None or not isinstance(loaded.value, dict):
            problem = loaded.reject.detail if loaded.reject else "expected a JSON object keyed by query id"
            raise ExclusionListError(f"{file.path}: {problem}")
        group = file.path.name.split("_", 1)[0]
        pairs.update((group, str(query_id)) for query_id in loaded.value)
        entries.append({"file": file.name, "group": group, "ids": len(loaded.value), "sha256": hashlib.sha256(loaded.data).hexdigest()})
    return frozenset(pairs), entries


def build_corpus(config: BuildConfig, out: Path, progress: bool | None = None) -> BuildResult:
    """Read `config.inputs` with `config.source` and write the corpus directory `out`."""
    source = get_source(config.source)
    files = discover_files(config.inputs, source.suffixes)
    excluded, exclusion_entries = load_excluded_query_ids(config.exclude_test_ids)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # the directory is incomplete until the new manifest lands

    stats, rejects, inputs = BuildStats(), [], []

    def on_file(file: InputFile, data: bytes) -> None:
        inputs.append({"file": file.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})

    options = {"exclude_query_ids": excluded}
    if config.compat == "alpha-umi":
        options["exclude_ids_any_group"] = frozenset(query_id for _, query_id in excluded)
    records = read_source(source, _progress(files, progress), options, on_file)
    roles = _role_writer(config, out)
    with atomic_path(out / TRAJECTORIES) as traj_tmp, atomic_open(out / REJECTS) as reject_handle, roles:
        parquet = ParquetBatchWriter(traj_tmp, TRAJECTORY_SCHEMA, rows_to_table)
        reject_lines = JsonlWriter(reject_handle)
        try:
            for item in records:
                row, item = _storable(item)
                stats.add(item)
                if isinstance(item, Reject):
                    if len(rejects) < MAX_REJECTS_KEPT:
                        rejects.append(item)
                    reject_lines.write(item.model_dump(mode="json"))
                else:
                    parquet.write(row)
                    roles.add(item)
        finally:
            parquet.close()
    manifest = _manifest(config, stats, inputs, exclusion_entries, out, roles)
    manifest["files"].update(write_card(out, manifest))
    write_json(out / MANIFEST, manifest)
    return BuildResult(out, manifest, rejects)


def _storable(item: Trajectory | Reject) -> tuple[dict[str, Any] | None, Trajectory | Reject]:
    """The Parquet row of a trajectory, or a reject when a value is nested too deeply to store."""
    if isinstance(item, Reject):
        return None, item
    try:
        return trajectory_to_row(item), item
    except TypeError:  # orjson: "Recursion limit reached"
        meta = item.meta
        ctx = RecordContext(InputFile(Path(meta.get("file", "")), meta.get("file", "")), meta.get("locator", "$"), "")
        return None, too_deep(ctx)


def _progress(files: list[InputFile], enabled: bool | None) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing when stderr is a pipe or a file.
    return tqdm(files, desc="reading", unit="file", disable=None if enabled is None else not enabled, leave=False)


def _role_writer(config: BuildConfig, out: Path) -> RoleCorpusWriter:
    render = AlphaUmiCompatRenderer() if config.compat == "alpha-umi" else DefaultRenderer()
    return RoleCorpusWriter(out, render, config.split_seed, config.split_ratio)


def _manifest(
    config: BuildConfig, stats: BuildStats, inputs: list, exclusions: list, out: Path, roles: RoleCorpusWriter
) -> dict[str, Any]:
    manifest = {
        "kind": "umi-corpus",
        "umi_version": umi_data.__version__,
        "config": config.model_dump(),
        "counts": stats.as_dict(),
        "inputs": inputs,
        "exclusion_lists": exclusions,
        "files": {
            TRAJECTORIES: file_entry(out / TRAJECTORIES, rows=stats.accepted),
            REJECTS: file_entry(out / REJECTS, rows=stats.read - stats.accepted),
        },
    }
    manifest["examples"] = roles.manifest_counts()
    manifest["files"].update(roles.file_entries())
    return manifest


def rewrite_card(directory: Path) -> list[Path]:
    """Write the data card of an existing corpus again and update the manifest's file entries."""
    manifest_path = require_corpus(directory) / MANIFEST
    manifest = orjson.loads(manifest_path.read_bytes())
    entries = write_card(directory, manifest)
    manifest["files"].update(entries)
    write_json(manifest_path, manifest)
    return [directory / name for name in entries]


def summary_line(result: BuildResult) -> str:
    counts = result.manifest["counts"]
    reasons = ", ".join(f"{reason}: {n}" for reason, n in counts["rejected_by_reason"].items())
    outcomes = ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items() if v)
    return (
        f"read {counts['read']}, accepted {counts['accepted']} ({outcomes or 'none'}; "
        f"{counts['turns']['caller']} calls), rejected {counts['rejected']}"
        + (f" ({reasons})" if reasons else "")
        + f" -> {result.out}"
    )


def reject_listing(result: BuildResult) -> str:
    lines = [f"  {r.source_file} {r.locator}: {r.reason.value}: {r.detail}" for r in result.rejects]
    hidden = result.manifest["counts"]["rejected"] - len(result.rejects)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more in {result.out / REJECTS}")
    return "\n".join(lines)


__all__ = ["BuildConfig", "BuildResult", "ExclusionListError", "InputPathError", "build_corpus", "summary_line"]
