"""What `merge` verifies before (and while) it joins shard directories, so that it never trusts
what a shard directory says about itself:

- `shard.json` parses and has every field, with its type (`ShardManifest`);
- every shard carries the fingerprint of the whole build (`build_fingerprint`: umi version,
  options, N, and every input file of the build with its sha256), and all shards carry the
  same one: shards of different builds, or of inputs that changed between shard builds, are
  refused by name;
- every file the shard wrote is there, inside the shard, with the size and sha256 recorded;
  the shards' `inputs.jsonl` together are exactly the inputs of the fingerprint, each shard
  its own slice; row counts are the files' own;
- the counts of the merged manifest are recomputed from the shard files as they are copied
  (`Recount`) and a shard whose `shard.json` says otherwise is refused.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, REJECTS, TRAJECTORIES
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS
from umi_data.building.parts import BuildStats
from umi_data.sources.base import iter_files

SHARD_MANIFEST = "shard.json"


class ShardError(ValueError):
    """Shard directories that cannot be merged (a usage error)."""


class FileRecord(BaseModel):
    sha256: str
    bytes: int = Field(ge=0)
    rows: Optional[int] = Field(default=None, ge=0)


class Stale(BaseModel):
    rows: int = Field(ge=0)
    fresh_input: Optional[str]
    last_input: Optional[str]


class ShardManifest(BaseModel):
    """`shard.json`, as `write_shard_manifest` writes it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["umi-corpus-shard"]
    umi_version: str
    config: dict[str, Any]
    shard: tuple[int, int]
    counts: dict[str, Any]
    examples: dict[str, dict[str, int]]
    official_rows: dict[str, int]
    exclusion_lists: list[Any]
    stale: Stale
    build: dict[str, Any]
    fingerprint: str
    files: dict[str, FileRecord]


def inputs_digest(paths: Sequence[str], suffixes: tuple[str, ...]) -> dict[str, Any]:
    """Every input file of a build, hashed: {files, bytes, sha256 over `name\\0sha256\\n`} (the
    formula of the manifest's `inputs.sha256`; an unreadable file hashes as empty, as it is read)."""
    digest, files, size = hashlib.sha256(), 0, 0
    for file in iter_files(paths, suffixes):
        try:
            data = file.path.read_bytes()
        except OSError:
            data = b""
        files, size = files + 1, size + len(data)
        digest.update(f"{file.name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return {"files": files, "bytes": size, "sha256": digest.hexdigest()}


def build_fingerprint(version: str, config: dict[str, Any], count: int, exclusions: list, inputs: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(what identifies the whole sharded build, its sha256)."""
    build = {"umi_version": version, "config": config, "shards": count, "inputs": inputs, "exclusion_lists": exclusions}
    return build, hashlib.sha256(orjson.dumps(build, option=orjson.OPT_SORT_KEYS)).hexdigest()


def shard_file_names(official_rows: dict[str, int]) -> list[str]:
    names = [TRAJECTORIES, REJECTS, INPUTS]
    names += [f"{ROLE_PATHS[role]}{suffix}" for role in EXAMPLE_ROLES for suffix in (".parquet", ".jsonl")]
    return names + [f"{ALPHA_UMI_DIR}/{name}.json" for name in official_rows]


def _parse(directory: Path) -> ShardManifest:
    path = directory / SHARD_MANIFEST
    if not directory.is_dir() or not path.is_file():
        raise ShardError(f"{directory}: not a complete shard directory (no {SHARD_MANIFEST}); write one with `build --shard I/N`")
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise ShardError(f"{directory}: {SHARD_MANIFEST} is not readable JSON; build the shard again") from None
    if isinstance(value, dict) and value.get("kind") == "umi-corpus-shard" and "fingerprint" not in value:
        raise ShardError(f"{directory}: a shard of an older umi, without the build's fingerprint; build the shards again")
    try:
        return ShardManifest.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"])) or "top level"
        raise ShardError(f"{directory}: {SHARD_MANIFEST} is malformed at {where}: {error['msg']}; build the shard again") from None


def load_shards(directories: Sequence[Path], out: Path) -> list[tuple[Path, ShardManifest]]:
    """The shards in index order: parsed, all of one build, their files as recorded."""
    _check_out(directories, out)
    shards = [(directory, _parse(directory)) for directory in directories]
    for directory, manifest in shards:
        _check_fingerprint(directory, manifest)
    shards.sort(key=lambda shard: shard[1].shard[0])
    first_dir, first = shards[0]
    count = first.shard[1]
    if [list(m.shard) for _, m in shards] != [[i, count] for i in range(count)]:
        found = ", ".join(f"{i}/{n}" for _, m in shards for i, n in [m.shard])
        raise ShardError(f"expected shards 0/{count} to {count - 1}/{count}, each once; got {found}")
    for directory, manifest in shards[1:]:
        if manifest.fingerprint != first.fingerprint:
            differ = [key for key in first.build if first.build.get(key) != manifest.build.get(key)] or ["fingerprint"]
            raise ShardError(f"{directory}: a shard of another build than {first_dir} (they differ in {', '.join(differ)}); "
                             "build every shard from the same inputs and options")
    for directory, manifest in shards:
        _check_files(directory, manifest)
    _check_inputs(shards)
    return shards


def _check_out(directories: Sequence[Path], out: Path) -> None:
    target = out.resolve()
    for directory in directories:
        shard = directory.resolve()
        if target == shard or target.is_relative_to(shard) or shard.is_relative_to(target):
            raise ShardError(f"{out}: is, is inside, or holds the shard {directory}; merge into another --out")


def _check_fingerprint(directory: Path, manifest: ShardManifest) -> None:
    _, fingerprint = build_fingerprint(manifest.build.get("umi_version", ""), manifest.build.get("config", {}),
                                       manifest.build.get("shards", 0), manifest.build.get("exclusion_lists", []),
                                       manifest.build.get("inputs", {}))
    build = manifest.build
    if (fingerprint != manifest.fingerprint or build.get("shards") != manifest.shard[1] or build.get("config") != manifest.config
            or build.get("umi_version") != manifest.umi_version or not isinstance(build.get("inputs"), dict)):
        raise ShardError(f"{directory}: {SHARD_MANIFEST}'s build fingerprint does not match what it describes (edited?); build the shard again")


def _check_files(directory: Path, manifest: ShardManifest) -> None:
    import pyarrow.parquet as pq

    from umi_data.plumbing.write import sha256_file

    root = directory.resolve()
    for name in shard_file_names(manifest.official_rows):
        record = manifest.files.get(name)
        path = directory / name
        if record is None or not path.is_file() or not path.resolve().is_relative_to(root):
            raise ShardError(f"{directory}: {name} is missing (or not a file of the shard); build the shard again")
        if path.stat().st_size != record.bytes or sha256_file(path) != record.sha256:
            raise ShardError(f"{directory}: {name} is not the file the shard wrote (changed or truncated); build the shard again")
        if name.endswith(".parquet"):
            try:
                rows = pq.read_metadata(path).num_rows
            except Exception:  # pyarrow: ArrowInvalid, OSError, ...
                raise ShardError(f"{directory}: {name} is not a readable Parquet file; build the shard again") from None
            if record.rows is not None and rows != record.rows:
                raise ShardError(f"{directory}: {name} holds {rows} rows, {SHARD_MANIFEST} says {record.rows}; build the shard again")


def _check_inputs(shards: list[tuple[Path, ShardManifest]]) -> None:
    """The shards' inputs.jsonl, in order, are the build's inputs: shard I of N holds files
    [I*n/N, (I+1)*n/N) of the n, and all of them hash to the fingerprint's."""
    expected = shards[0][1].build["inputs"]
    total, count = expected.get("files"), len(shards)
    digest = hashlib.sha256()
    for index, (directory, _) in enumerate(shards):
        lines = 0
        with open(directory / INPUTS, "rb") as handle:
            for line in handle:
                try:
                    entry = orjson.loads(line)
                    digest.update(f"{entry['file']}\0{entry['sha256']}\n".encode())
                except (orjson.JSONDecodeError, TypeError, KeyError):
                    raise ShardError(f"{directory}: {INPUTS} line {lines + 1} is not an input entry; build the shard again") from None
                lines += 1
        if not isinstance(total, int) or lines != (index + 1) * total // count - index * total // count:
            raise ShardError(f"{directory}: holds {lines} input files, not its share of the build's {total}; build the shard again")
    if digest.hexdigest() != expected.get("sha256"):
        raise ShardError(f"{shards[0][0]}: the shards' input files are not the build's (inputs changed between shard builds?)")


class Recount:
    """The counts of a shard recomputed from its files as `merge` copies them."""

    def __init__(self) -> None:
        self.stats = BuildStats()
        self.splits: dict[str, Counter[str]] = {role: Counter() for role in EXAMPLE_ROLES}

    def trajectories(self, table: Any) -> None:
        import pyarrow.compute as pc

        self.stats.read += table.num_rows
        self.stats.accepted += table.num_rows
        self.stats.outcomes.update(table.column("outcome").to_pylist())
        turns = pc.list_flatten(table.column("turns"))
        roles = pc.struct_field(turns, "role")
        self.stats.turns.update(roles.to_pylist())
        callers = pc.and_(pc.equal(roles, "caller"), pc.fill_null(pc.struct_field(turns, "hallucinated"), False))
        self.stats.hallucinated_calls += pc.sum(callers.cast("int64")).as_py() or 0

    def rejects(self, block: bytes) -> None:
        for line in block.splitlines():
            if line.strip():
                self.stats.read += 1
                self.stats.rejected_by_reason[str(orjson.loads(line).get("reason"))] += 1

    def examples(self, role: str, table: Any) -> None:
        self.splits[role].update(table.column("split").to_pylist())

    def check(self, directory: Path, manifest: ShardManifest) -> None:
        claimed = {role: Counter({k: v for k, v in counts.items() if v}) for role, counts in manifest.examples.items()}
        found = {role: Counter({k: v for k, v in counts.items() if v}) for role, counts in self.splits.items()}
        if self.stats.as_dict() != manifest.counts or claimed != found:
            raise ShardError(f"{directory}: the counts in {SHARD_MANIFEST} are not those of its files (edited?); build the shard again")


__all__ = ["Recount", "SHARD_MANIFEST", "ShardError", "ShardManifest", "build_fingerprint", "inputs_digest", "load_shards"]
