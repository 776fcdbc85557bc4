"""Builds beyond one machine: `build --shard I/N` converts the I-th of N runs of the input files
into a shard directory, and `merge` joins shard directories into the corpus one `build` over all
the inputs writes, byte for byte.

Shard I holds input files [I*n/N, (I+1)*n/N) of the n files in build order, so shards joined in
index order are the build's order. A shard directory has the corpus files of its part (no card)
and `shard.json`, which carries what the merge needs: counts, and compat mode's leading backbone
examples still waiting for the input of the shard before (see `umi_data.corpus_writer`).
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import orjson

from umi_data.corpus import ALPHA_UMI_DIR, INPUTS, REJECTS, TRAJECTORIES
from umi_data.corpus_writer import ROW_GROUP_ROWS, CorpusWriter
from umi_data.examples import EXAMPLE_ROLES, ROLE_PATHS
from umi_data.parts import BuildStats
from umi_data.render import STALE_INPUT
from umi_data.sources.base import InputFile, iter_files
from umi_data.write import write_json

if TYPE_CHECKING:
    from umi_data.build import BuildConfig, BuildResult

SHARD_MANIFEST = "shard.json"
COPY_BLOCK = 1 << 20


class ShardError(ValueError):
    """Shard directories that cannot be merged (a usage error)."""


def parse_shard(text: str) -> tuple[int, int]:
    """`"I/N"` → (I, N) with 0 <= I < N."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        raise ValueError(f"expected I/N (e.g. 0/8), got {text!r}") from None
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"expected I/N with 0 <= I < N, got {text!r}")
    return shard


def shard_files(paths: Sequence[str], suffixes: tuple[str, ...], index: int, count: int) -> Iterator[InputFile]:
    """The input files of shard `index` of `count`: counted in one pass, then streamed."""
    total = sum(1 for _ in iter_files(paths, suffixes))
    return islice(iter_files(paths, suffixes), index * total // count, (index + 1) * total // count)


def write_shard_manifest(config: "BuildConfig", writer: CorpusWriter, exclusions: list, out: Path,
                         shard: tuple[int, int]) -> dict[str, Any]:
    import umi_data
    from umi_data.build import storable_config

    manifest = {
        "kind": "umi-corpus-shard",
        "umi_version": umi_data.__version__,
        "config": storable_config(config),
        "shard": list(shard),
        "counts": writer.stats.as_dict(),
        "examples": {role: dict(sorted(counts.items())) for role, counts in writer.splits.items()},
        "official_rows": writer.official_rows(),
        "exclusion_lists": exclusions,
        # Compat mode: leading backbone examples waiting for the previous shard's input, and the
        # input this shard hands on (None: it has none of its own).
        "stale": {"rows": writer.stale_rows, "fresh_input": writer.fresh_input,
                  "last_input": None if writer.stale in (None, STALE_INPUT) else writer.stale},
    }
    write_json(out / SHARD_MANIFEST, manifest)
    return manifest


def merge_shards(directories: Sequence[str | Path], out: Path) -> "BuildResult":
    """Join the shard directories of one sharded build into the corpus directory `out`."""
    from umi_data.build import CORPUS_OUTPUT, BuildConfig, BuildResult, finish_corpus
    from umi_data.corpus import MANIFEST
    from umi_data.outdir import claim_out_dir

    shards = _load_shards([Path(d) for d in directories])
    config = BuildConfig.model_validate(shards[0][1]["config"])
    with claim_out_dir(out, CORPUS_OUTPUT) as claim:  # the same output as one build: same policy, same lock
        (out / MANIFEST).unlink(missing_ok=True)
        writer = CorpusWriter(out)
        with writer:
            for directory, manifest in shards:
                _append_shard(writer, directory, manifest)
        manifest = finish_corpus(config, writer, shards[0][1]["exclusion_lists"], out, claim)
    return BuildResult(out, manifest, _first_rejects(out / REJECTS))


def _load_shards(directories: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """The shards in index order, checked to be all the shards of one build."""
    shards = []
    for directory in directories:
        path = directory / SHARD_MANIFEST
        if not path.is_file():
            raise ShardError(f"{directory}: not a complete shard directory (no {SHARD_MANIFEST}); write one with `build --shard I/N`")
        shards.append((directory, orjson.loads(path.read_bytes())))
    shards.sort(key=lambda shard: shard[1]["shard"][0])
    count = shards[0][1]["shard"][1]
    if [m["shard"] for _, m in shards] != [[i, count] for i in range(count)]:
        found = ", ".join(f"{i}/{n}" for _, m in shards for i, n in [m["shard"]])
        raise ShardError(f"expected shards 0/{count} to {count - 1}/{count}, each once; got {found}")
    for directory, manifest in shards[1:]:
        if manifest["config"] != shards[0][1]["config"] or manifest["umi_version"] != shards[0][1]["umi_version"]:
            raise ShardError(f"{directory}: built with another configuration or umi version than {shards[0][0]}")
    return shards


def _append_shard(writer: CorpusWriter, directory: Path, manifest: dict[str, Any]) -> None:
    splits = {role: Counter(counts) for role, counts in manifest["examples"].items()}
    writer.add_counts(BuildStats.from_dict(manifest["counts"]), splits, [])
    with open(directory / INPUTS, "rb") as handle:
        writer.add_inputs(handle)
    with open(directory / REJECTS, "rb") as handle:
        writer.write_rejects(iter(lambda: handle.read(COPY_BLOCK), b""))
    for table in _tables(directory / TRAJECTORIES):
        writer.write_trajectories(table)
    stale = manifest["stale"]
    value = writer.resolve(stale["rows"], stale["fresh_input"], stale["last_input"])
    for role in EXAMPLE_ROLES:
        fix = stale["rows"] if role == "backbone" else 0
        base = directory / ROLE_PATHS[role]
        with open(base.with_suffix(".jsonl"), "rb") as lines:
            writer.write_examples(role, _tables(base.with_suffix(".parquet")), lines, fix, value)
    for name in manifest["official_rows"]:
        fix = stale["rows"] if name == "train_backbone" else 0
        writer.write_official(name, _array_elements(directory / ALPHA_UMI_DIR / f"{name}.json"), fix, value)


def _tables(path: Path) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_ROWS, use_threads=False):
        yield pa.Table.from_batches([batch])


def _array_elements(path: Path) -> Iterator[bytes]:
    """The elements of a JSON array written by `JsonArrayWriter` (one compact element a line)."""
    with open(path, "rb") as handle:
        if handle.readline().strip() == b"[]":
            return
        for line in handle:
            line = line.rstrip(b"\n")
            if line == b"]":
                return
            yield line[:-1] if line.endswith(b",") else line


def _first_rejects(path: Path) -> list[Any]:
    from umi_data.core import Reject
    from umi_data.parts import MAX_REJECTS_KEPT

    with open(path, "rb") as handle:
        return [Reject.model_validate_json(line) for line in islice(handle, MAX_REJECTS_KEPT)]


__all__ = ["SHARD_MANIFEST", "ShardError", "merge_shards", "parse_shard", "shard_files", "write_shard_manifest"]
