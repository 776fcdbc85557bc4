"""`build`: source files → a corpus directory (trajectories.parquet, rejects.jsonl, manifest.json).

One pass, streaming: each record becomes a trajectory row or a reject line as it is read, so
memory is bounded by a Parquet row group, not by the input. Accepted + rejected always equals
what was read, and the manifest (written last) says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from umi_data.building.config import CORPUS_OUTPUT, BuildConfig, BuildResult
from umi_data.building.manifest import finish_corpus
from umi_data.building.parts import BuildStats, PartTask
from umi_data.building.shard_checks import SHARD_MANIFEST, inputs_digest
from umi_data.building.shards import shard_files, write_shard_manifest
from umi_data.building.workers import batched, run_parts
from umi_data.building.writer import CorpusWriter
from umi_data.corpus.layout import MANIFEST, REJECTS
from umi_data.plumbing.outdir import OutputClaim, claim_out_dir
from umi_data.rendering.render import STALE_INPUT
from umi_data.sources import discover_files, get_source
from umi_data.sources.base import InputPathError, check_input_paths, iter_files, load_json

#: Input files converted together (a worker's unit of work): big enough to amortise sending
#: the work, small enough that the parts in flight stay a few megabytes.
PART_FILES = 64


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


__all__ = ["BuildConfig", "BuildResult", "BuildStats", "ExclusionListError", "InputPathError", "build_corpus", "summary_line"]
