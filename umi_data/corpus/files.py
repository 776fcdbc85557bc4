"""The files of a corpus (or export) directory, checked before anything reads them for SQL.

`umi_data.corpus.duck` never lets DuckDB open a path: each file is checked here and handed over as a
lazy Arrow dataset. A check refuses, in one line that names only the corpus and the file's
place in it (never where a symbolic link leads, never the columns of a foreign file):

- a missing file, or one that is not a regular file;
- a file, or a symbolic link, that leads outside the directory;
- a file whose size or row count is not what the manifest recorded (changed, truncated or
  replaced since the build), a Parquet file that cannot be opened, or one without the
  columns the views need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umi_data.corpus.layout import MANIFEST, REJECTS, TRAJECTORIES, CorpusNotFoundError, require_corpus
from umi_data.rendering.examples import ROLE_PATHS

#: the trajectory columns the views use
TRAJECTORY_COLUMNS = ("id", "source", "turns", "tools")
REJECT_FIELDS = ("source_file", "locator", "reason", "detail")


class CorpusFileError(CorpusNotFoundError):
    """A corpus file that cannot be read as what the manifest says it is (one line, exit 2)."""


@dataclass
class CorpusFiles:
    """The checked files of one corpus directory, as Arrow datasets keyed by kind
    (`trajectories`, `rejects`, `examples`: the four role files)."""

    directory: Path
    index: int
    datasets: dict[str, Any] = field(default_factory=dict)

    def table(self, kind: str) -> str:
        return f"_umi_{self.index}_{kind}"

    def register(self, connection: Any) -> None:
        for kind, dataset in self.datasets.items():
            connection.register(self.table(kind), dataset)


def _load_json(directory: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads(checked_file(directory, name, {}).read_bytes())
    except (OSError, ValueError, RecursionError):
        raise CorpusFileError(f"{directory}: {name} is not readable JSON; build it again") from None
    if not isinstance(value, dict):
        raise CorpusFileError(f"{directory}: {name} is not a JSON object; build it again")
    return value


def checked_file(directory: Path, relative: str, entries: dict[str, Any]) -> Path:
    """`directory/relative`, resolved, when it is a regular file inside `directory` (itself
    resolved) whose size is the one `entries[relative]` records (when it records one)."""
    path = directory / relative
    if not path.exists() and not path.is_symlink():
        raise CorpusFileError(f"{directory}: {relative} is missing; build the corpus again")
    real = path.resolve()
    if not real.is_relative_to(directory):
        raise CorpusFileError(f"{directory}: {relative} leads outside the directory (a symbolic link); refused")
    if not real.is_file():
        raise CorpusFileError(f"{directory}: {relative} is not a regular file")
    entry = entries.get(relative)
    size = real.stat().st_size
    if isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and entry["bytes"] != size:
        raise CorpusFileError(
            f"{directory}: {relative} is {size} bytes but the manifest says {entry['bytes']} "
            "(changed, truncated or replaced since the build); build the corpus again"
        )
    return real


def _parquet(directory: Path, relative: str, entries: dict[str, Any], columns: tuple[str, ...] = ()) -> str:
    """The checked path of a Parquet file of the corpus (its footer read, rows and columns as
    the manifest and the views need)."""
    import pyarrow.parquet as pq

    path = checked_file(directory, relative, entries)
    try:
        metadata = pq.read_metadata(path)
    except Exception:  # pyarrow raises ArrowInvalid, OSError, ... for a file that is not Parquet
        raise CorpusFileError(f"{directory}: {relative} is not a readable Parquet file (truncated?); build the corpus again") from None
    entry = entries.get(relative)
    if isinstance(entry, dict) and isinstance(entry.get("rows"), int) and entry["rows"] != metadata.num_rows:
        raise CorpusFileError(f"{directory}: {relative} has {metadata.num_rows} rows but the manifest says {entry['rows']}; build the corpus again")
    names = metadata.schema.to_arrow_schema().names
    missing = [c for c in columns if c not in names]
    if missing:
        raise CorpusFileError(f"{directory}: {relative} lacks the corpus column(s) {', '.join(missing)}; build the corpus again")
    return str(path)


def _jsonl(path: Path, schema: Any = None) -> Any:
    """A JSON-lines file as an Arrow dataset (`schema`: its columns, else inferred); an empty
    file as an empty table."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.json as pj

    if path.stat().st_size == 0:
        return (schema or pa.schema([])).empty_table()
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore") if schema else pj.ParseOptions()
    return ds.dataset([str(path)], format=ds.JsonFileFormat(parse_options=options), schema=schema)


def corpus_files(directory: Path, index: int = 0) -> CorpusFiles:
    """The checked files of the corpus `directory` (`CorpusFileError` names what is wrong)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    directory = require_corpus(directory).resolve()
    manifest = _load_json(directory, MANIFEST)
    entries = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    files = CorpusFiles(directory, index)
    files.datasets["trajectories"] = ds.dataset([_parquet(directory, TRAJECTORIES, entries, TRAJECTORY_COLUMNS)], format="parquet")
    examples = [_parquet(directory, f"{base}.parquet", entries) for base in ROLE_PATHS.values()]
    files.datasets["examples"] = ds.dataset(examples, format="parquet")  # one scan over the four role files (one schema)
    schema = pa.schema([(name, pa.string()) for name in REJECT_FIELDS])
    files.datasets["rejects"] = _jsonl(checked_file(directory, REJECTS, entries), schema)
    return files


def export_files(directory: Path, index: int = 0) -> tuple[Path, dict[str, tuple[str, Any]]]:
    """The JSONL files an export directory's `export.json` lists: {relative path: (table name,
    Arrow dataset)}."""
    from umi_data.exports.export import EXPORT_MANIFEST

    directory = directory.resolve()
    if not (directory / EXPORT_MANIFEST).is_file():
        raise CorpusFileError(f"{directory}: not an export directory (no {EXPORT_MANIFEST})")
    manifest = _load_json(directory, EXPORT_MANIFEST)
    listed = [entry for stage in _values(manifest.get("stages")) for entry in _values(stage.get("files") if isinstance(stage, dict) else None)]
    files: dict[str, tuple[str, Any]] = {}
    for entry in listed:
        relative = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(relative, str) and relative.endswith(".jsonl") and relative not in files:
            path = checked_file(directory, relative, {relative: entry})
            files[relative] = (f"_umi_export_{index}_{len(files)}", _jsonl(path))
    return directory, files


def _values(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else []


__all__ = ["CorpusFileError", "CorpusFiles", "checked_file", "corpus_files", "export_files"]
