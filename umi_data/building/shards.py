"""Builds beyond one machine: `build --shard I/N` converts the I-th of N runs of the input files
into a shard directory, and `merge` joins shard directories into the corpus one `build` over all
the inputs writes, byte for byte.

Shard I holds input files [I*n/N, (I+1)*n/N) of the n files in build order, so shards joined in
index order are the build's order. A shard directory has the corpus files of its part (no card)
and `shard.json`, which carries what the merge needs: counts, and compat mode's leading backbone
examples still waiting for the input of the shard before (see `umi_data.building.writer`).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any, Iterator, Sequence

from umi_data.building.config import CORPUS_OUTPUT, BuildConfig, BuildResult, storable_config
from umi_data.building.manifest import finish_corpus
from umi_data.building.shard_checks import SHARD_MANIFEST, Recount, ShardError, ShardManifest, build_fingerprint, load_shards, shard_file_names
from umi_data.building.writer import ROW_GROUP_ROWS, CorpusWriter
from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, MANIFEST, REJECTS, TRAJECTORIES
from umi_data.plumbing.outdir import claim_out_dir
from umi_data.plumbing.write import write_json
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS
from umi_data.rendering.render import STALE_INPUT
from umi_data.sources.base import InputFile, iter_files

COPY_BLOCK = 1 << 20


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


def write_shard_manifest(config: BuildConfig, writer: CorpusWriter, exclusions: list, out: Path,
                         shard: tuple[int, int], inputs: dict[str, Any]) -> dict[str, Any]:
    """`shard.json`: what the merge needs, the fingerprint of the whole build (`inputs`: every
    input file of it, hashed) and the record of every file the shard wrote."""
    import umi_data

    build, fingerprint = build_fingerprint(umi_data.__version__, storable_config(config), shard[1], exclusions, inputs)
    rows = {TRAJECTORIES: writer.stats.accepted, REJECTS: writer.stats.read - writer.stats.accepted, INPUTS: writer.inputs}
    rows.update({f"{ROLE_PATHS[role]}{suffix}": sum(writer.splits[role].values()) for role in EXAMPLE_ROLES for suffix in (".parquet", ".jsonl")})
    rows.update({f"{ALPHA_UMI_DIR}/{name}.json": n for name, n in writer.official_rows().items()})
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
        "build": build,
        "fingerprint": fingerprint,
        "files": {name: writer.file_entry(name, rows=rows[name]) for name in shard_file_names(writer.official_rows())},
    }
    write_json(out / SHARD_MANIFEST, manifest)
    return manifest


def merge_shards(directories: Sequence[str | Path], out: Path) -> BuildResult:
    """Join the shard directories of one sharded build into the corpus directory `out`, after
    checking them (umi_data/building/shard_checks.py); counts are recomputed from the shard files."""

    out = Path(out)
    shards = load_shards([Path(d) for d in directories], out)
    try:
        config = BuildConfig.model_validate(shards[0][1].config)
    except ValueError as exc:  # pydantic's ValidationError
        raise ShardError(f"{shards[0][0]}: {SHARD_MANIFEST} has options this umi does not know ({str(exc).splitlines()[0]})") from None
    with claim_out_dir(out, CORPUS_OUTPUT) as claim:  # the same output as one build: same policy, same lock
        (out / MANIFEST).unlink(missing_ok=True)
        writer = CorpusWriter(out)
        with writer:
            for directory, manifest in shards:
                _append_shard(writer, directory, manifest)
        manifest = finish_corpus(config, writer, shards[0][1].exclusion_lists, out, claim)
    return BuildResult(out, manifest, _first_rejects(out / REJECTS), claim.kept)


def _append_shard(writer: CorpusWriter, directory: Path, manifest: ShardManifest) -> None:
    recount = Recount()
    with open(directory / INPUTS, "rb") as handle:
        writer.add_inputs(handle)
    with open(directory / REJECTS, "rb") as handle:
        writer.write_rejects(_counted(iter(lambda: handle.read(COPY_BLOCK), b""), recount))
    for table in _tables(directory / TRAJECTORIES):
        recount.trajectories(table)
        writer.write_trajectories(table)
    stale = manifest.stale
    value = writer.resolve(stale.rows, stale.fresh_input, stale.last_input)
    for role in EXAMPLE_ROLES:
        fix = stale.rows if role == "backbone" else 0
        base = directory / ROLE_PATHS[role]
        with open(base.with_suffix(".jsonl"), "rb") as lines:
            writer.write_examples(role, _recounted(role, _tables(base.with_suffix(".parquet")), recount), lines, fix, value)
    for name in manifest.official_rows:
        fix = stale.rows if name == "train_backbone" else 0
        writer.write_official(name, _array_elements(directory / ALPHA_UMI_DIR / f"{name}.json"), fix, value)
    recount.check(directory, manifest)
    writer.add_counts(recount.stats, recount.splits, [])


def _counted(blocks: Iterator[bytes], recount: Recount) -> Iterator[bytes]:
    """Reject blocks of whole lines (a block ends where a line does), counted on the way."""
    rest = b""
    for block in blocks:
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        recount.rejects(block[:cut])
        yield block[:cut]
    if rest:
        recount.rejects(rest)
        yield rest


def _recounted(role: str, tables: Iterator[Any], recount: Recount) -> Iterator[Any]:
    for table in tables:
        recount.examples(role, table)
        yield table


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
    from umi_data.building.parts import MAX_REJECTS_KEPT

    with open(path, "rb") as handle:
        return [Reject.model_validate_json(line) for line in islice(handle, MAX_REJECTS_KEPT)]


__all__ = ["SHARD_MANIFEST", "ShardError", "merge_shards", "parse_shard", "shard_files", "write_shard_manifest"]
