"""`build`: source files → a corpus directory (trajectories.parquet, rejects.jsonl, manifest.json).

One pass, streaming: each record becomes a trajectory row or a reject line as it is read, so
memory is bounded by a Parquet row group, not by the input. Accepted + rejected always equals
what was read, and the manifest (written last) says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import orjson
from pydantic import BaseModel, ConfigDict, Field

import umi_data
from umi_data.corpus.card import CARD, CARD_DIR, write_card
from umi_data.core import Reject
from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, MANIFEST, REJECTS, TRAJECTORIES, CorpusNotFoundError, require_corpus
from umi_data.building.writer import CorpusWriter
from umi_data.building.fields import BUILD_FIELDS, DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS
from umi_data.building.memory import release_memory
from umi_data.plumbing.outdir import Output, OutputClaim, claim_out_dir
from umi_data.building.workers import batched, run_parts
from umi_data.building.parts import BuildStats, PartTask
from umi_data.rendering.render import STALE_INPUT
from umi_data.building.shard_checks import inputs_digest
from umi_data.building.shards import SHARD_MANIFEST, shard_files, write_shard_manifest
from umi_data.sources import discover_files, get_source
from umi_data.sources.base import InputPathError, check_input_paths, iter_files, load_json, text_name
from umi_data.corpus.stats import card_lengths
from umi_data.plumbing.write import sha256_file, write_json

def corpus_record(directory: Path) -> dict[str, str] | None:
    """What an older umi recorded writing into `directory`, before the lock held a record: the
    file hashes of its corpus manifest (`manifest.json` of kind `umi-corpus` listing sha256 of
    every file, with `trajectories.parquet` there at its recorded size); None otherwise: a
    directory that merely holds a file named manifest.json is not a corpus."""
    try:
        manifest = orjson.loads((directory / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) and manifest.get("kind") == "umi-corpus" else None
    if not isinstance(files, dict) or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in files.values()):
        return None
    entry, trajectories = files.get(TRAJECTORIES), directory / TRAJECTORIES
    if entry is None or not trajectories.is_file() or trajectories.stat().st_size != entry.get("bytes"):
        return None
    record = {str(name): entry["sha256"] for name, entry in files.items()}
    record[MANIFEST] = sha256_file(directory / MANIFEST)
    return record


#: Input files converted together (a worker's unit of work): big enough to amortise sending
#: the work, small enough that the parts in flight stay a few megabytes.
PART_FILES = 64
#: what `build` (and `--shard`) writes into its --out; `card` rewrites there under the same lock
CORPUS_OUTPUT = Output(
    command="umi-data build", markers=(MANIFEST, SHARD_MANIFEST),
    owns=(TRAJECTORIES, REJECTS, INPUTS, MANIFEST, SHARD_MANIFEST, CARD, CARD_DIR, "global", "local", ALPHA_UMI_DIR),
    legacy_record=corpus_record,
)


class BuildConfig(BaseModel):
    """What `python -m umi_data build` was asked to do (recorded in the manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description=BUILD_FIELDS["source"])
    inputs: list[str] = Field(min_length=1, description=BUILD_FIELDS["inputs"])
    exclude_test_ids: list[str] = Field(default_factory=list, description=BUILD_FIELDS["exclude_test_ids"])
    strict: bool = Field(default=False, description=BUILD_FIELDS["strict"])
    compat: Literal["alpha-umi"] | None = Field(default=None, description=BUILD_FIELDS["compat"])
    split_seed: int = Field(default=DEFAULT_SPLIT_SEED, description=BUILD_FIELDS["split_seed"])
    split_ratio: float = Field(default=DEFAULT_SPLIT_RATIO, ge=0.0, le=1.0, description=BUILD_FIELDS["split_ratio"])


@dataclass
class BuildResult:
    out: Path
    manifest: dict[str, Any]
    rejects: list[Reject]  # the first MAX_REJECTS_KEPT
    #: files in the directory that umi did not write (kept, not part of the corpus)
    kept: list[str] = field(default_factory=list)


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
        entries.append({"file": file.name, "group": group, "ids": len(loaded.value), "sha256": loaded.sha256})
    return frozenset(pairs), entries


def build_corpus(
    config: BuildConfig, out: Path, progress: bool | None = None, *, workers: int = 1, shard: tuple[int, int] | None = None,
    force: bool = False,
) -> BuildResult:
    """Read `config.inputs` with `config.source` and write the corpus directory `out`, with
    `workers` processes converting and rendering (the files do not depend on it). With
    `shard=(I, N)`, convert only the I-th of N runs of the input files into a shard directory
    for `python -m umi_data merge` (umi_data/building/shards.py). `out` is new, empty, or an earlier
    build's (replaced as a whole; umi_data.plumbing.outdir), and locked throughout."""
    source = get_source(config.source)
    check_input_paths(config.inputs, source.suffixes)
    check_out_outside_inputs(out, config.inputs)
    excluded, exclusion_entries = load_excluded_query_ids(config.exclude_test_ids)
    with claim_out_dir(out, CORPUS_OUTPUT, force) as claim:
        return _write_corpus(config, out, progress, workers, shard, excluded, exclusion_entries, claim)


def _write_corpus(
    config: BuildConfig, out: Path, progress: bool | None, workers: int, shard: tuple[int, int] | None,
    excluded: frozenset, exclusion_entries: list, claim: OutputClaim,
) -> BuildResult:
    source = get_source(config.source)
    for marker in (MANIFEST, SHARD_MANIFEST):  # the directory is incomplete until the new one lands
        (out / marker).unlink(missing_ok=True)
    options: dict[str, Any] = {"exclude_query_ids": excluded}
    if config.compat == "alpha-umi":
        options["compat"] = config.compat
        options["exclude_ids_any_group"] = frozenset(query_id for _, query_id in excluded)
    files = shard_files(config.inputs, source.suffixes, *shard) if shard else iter_files(config.inputs, source.suffixes)
    tasks = (PartTask(config.source, chunk, options, config.compat == "alpha-umi", config.split_seed, config.split_ratio)
             for chunk in batched(files, PART_FILES))
    writer = CorpusWriter(out, stale=STALE_INPUT if shard and shard[0] > 0 else None)
    with writer:
        for part in run_parts(tasks, workers, progress):
            writer.add(part)
    if shard:
        inputs = inputs_digest(config.inputs, source.suffixes)  # the whole build's, in every shard: its fingerprint
        manifest = write_shard_manifest(config, writer, exclusion_entries, out, shard, inputs)
        claim.kept = claim.sweep([*manifest["files"], SHARD_MANIFEST], {n: e["sha256"] for n, e in manifest["files"].items()})
    else:
        manifest = finish_corpus(config, writer, exclusion_entries, out, claim)
    return BuildResult(out, manifest, writer.first_rejects, claim.kept)


def check_out_outside_inputs(out: Path, inputs: Sequence[str]) -> None:
    """`--out` is neither an input nor inside one (a rebuild would read its own files back)."""
    target = Path(out).resolve()
    for raw in inputs:
        path = Path(raw).resolve()
        if target == path or target.is_relative_to(path):
            raise InputPathError(f"{out}: --out is inside the input {raw}; a build would read its own files as input; choose another --out")


def storable_config(config: BuildConfig) -> dict[str, Any]:
    """The config for a manifest, with paths that are not UTF-8 written `\\xNN` (`text_name`)."""
    dumped = config.model_dump()
    for key in ("inputs", "exclude_test_ids"):
        dumped[key] = [text_name(path) for path in dumped[key]]
    return dumped


def finish_corpus(config: BuildConfig, writer: CorpusWriter, exclusions: list, out: Path, claim: OutputClaim | None = None) -> dict[str, Any]:
    """The manifest of a corpus whose files `writer` wrote, then the card, then (with the output
    directory's `claim`, the leftovers of an older corpus swept away) the manifest on disk."""
    manifest = {
        "kind": "umi-corpus",
        "umi_version": umi_data.__version__,
        "config": storable_config(config),
        "counts": writer.stats.as_dict(),
        # Per-file hashes live in inputs.jsonl: the manifest of millions of inputs stays small.
        "inputs": {"files": writer.inputs, "bytes": writer.input_bytes, "sha256": writer.combined_input_hash, "list": INPUTS},
        "exclusion_lists": exclusions,
        "files": {
            TRAJECTORIES: writer.file_entry(TRAJECTORIES, rows=writer.stats.accepted),
            REJECTS: writer.file_entry(REJECTS, rows=writer.stats.read - writer.stats.accepted),
            INPUTS: writer.file_entry(INPUTS, rows=writer.inputs),
        },
        "examples": {role: {"total": sum(c.values()), "A": c["A"], "B": c["B"]} for role, c in writer.splits.items()},
    }
    for role in EXAMPLE_ROLES:
        for suffix in (".parquet", ".jsonl"):
            name = ROLE_PATHS[role] + suffix
            manifest["files"][name] = writer.file_entry(name, rows=manifest["examples"][role]["total"])
    for name, rows in writer.official_rows().items():
        manifest["files"][f"{ALPHA_UMI_DIR}/{name}.json"] = writer.file_entry(f"{ALPHA_UMI_DIR}/{name}.json", rows=rows)
    lengths = card_lengths(writer.lengths)
    writer.lengths.clear()
    release_memory()  # the card's statistics start from a small heap, not the writers' high-water mark
    manifest["files"].update(write_card(out, manifest, lengths, writer.turns.summary()))
    if claim is not None:  # nothing umi wrote for an older corpus (or a killed build) stays beside this one
        hashes = {name: entry["sha256"] for name, entry in manifest["files"].items()}
        claim.kept = claim.sweep([*manifest["files"], MANIFEST], hashes)
    write_json(out / MANIFEST, manifest)
    if claim is not None:
        claim.record(MANIFEST)
    return manifest


def rewrite_card(directory: Path) -> list[Path]:
    """Write the data card of an existing corpus again and update the manifest's file entries."""
    manifest_path = require_corpus(directory) / MANIFEST
    manifest = orjson.loads(manifest_path.read_bytes())
    if not isinstance(manifest.get("inputs"), dict):
        raise CorpusNotFoundError(f"{directory}: built by an older umi (input hashes in the manifest, no inputs.jsonl); build it again")
    with claim_out_dir(directory, CORPUS_OUTPUT) as claim:  # never beside a build writing the same corpus
        entries = write_card(directory, manifest)
        manifest["files"].update(entries)
        claim.sweep([*manifest["files"], MANIFEST], {name: entry["sha256"] for name, entry in manifest["files"].items()})
        write_json(manifest_path, manifest)
        claim.record(MANIFEST)
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


__all__ = ["BuildConfig", "BuildResult", "BuildStats", "finish_corpus", "ExclusionListError", "InputPathError", "build_corpus", "summary_line"]
