"""Where `query` takes its SQL from (an argument, `--file F`, or `-` for stdin) and where its
full result goes (`--out FILE`: Parquet, CSV, JSON or JSON lines by the suffix), written by
umi's atomic writer in Python, never by SQL: the DuckDB connection itself writes nowhere."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from umi_data.plumbing.outdir import atomic_open, atomic_path

MAX_CELL = 80
#: the most SQL text read from a file or stdin
MAX_SQL_BYTES = 16 << 20
OUT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
FETCH_ROWS = 8192


class QueryError(ValueError):
    """The SQL did not run (DuckDB's message says why), or its input or output is unusable."""


def read_sql(source: str) -> str:
    """The SQL text of `--file source` (`-`: stdin), as UTF-8."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_SQL_BYTES + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_SQL_BYTES + 1)
    except OSError as exc:
        raise QueryError(f"{source}: cannot read the SQL ({exc.strerror or exc})") from None
    if len(data) > MAX_SQL_BYTES:
        raise QueryError(f"{source}: more than {MAX_SQL_BYTES >> 20} MiB of SQL")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryError(f"{source}: the SQL is not UTF-8 (byte {exc.start})") from None


def out_format(path: Path) -> str:
    fmt = OUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise QueryError(f"{path}: --out FILE ends in one of {', '.join(OUT_FORMATS)} (the format)")
    return fmt


def check_new_file(path: Path, read: Sequence[Path] = ()) -> None:
    """`query --out` writes a new file only, and never inside a directory it reads."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise QueryError(f"{path}: exists; query --out writes only a new file (choose another name)")
    if not path.parent.is_dir():
        raise QueryError(f"{path}: its folder {path.parent} does not exist")
    target = path.parent.resolve() / path.name
    for directory in read:
        if target.is_relative_to(Path(directory).resolve()):
            raise QueryError(f"{path}: inside {directory}, which the query reads; choose a file elsewhere")


def plain(value: Any) -> Any:
    """JSON-ready values: DuckDB's JSON columns arrive as text and stay text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def cell(value: Any, limit: int | None = MAX_CELL) -> str:
    if value is None:
        return "NULL" if limit else ""
    text = value if isinstance(value, str) else json.dumps(plain(value), ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _rows(result: Any) -> Iterator[tuple]:
    while batch := result.fetchmany(FETCH_ROWS):
        yield from batch


def write_result(result: Any, path: Path) -> int:
    """Every row of `result` into `path` (atomically: all or nothing); the number of rows."""
    fmt = out_format(path)
    if fmt == "parquet":
        return _write_parquet(result, path)
    columns = [d[0] for d in result.description] if result.description else []
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for row in _rows(result):
                writer.writerow([cell(v, limit=None) for v in row])
                count += 1
            return count
        handle.write("[" if fmt == "json" else "")
        for row in _rows(result):
            separator = ("," if count else "") + "\n" if fmt == "json" else ""
            handle.write(separator + json.dumps(dict(zip(columns, map(plain, row))), ensure_ascii=False) + ("\n" if fmt == "jsonl" else ""))
            count += 1
        handle.write("\n]\n" if fmt == "json" else "")
    return count


def _write_parquet(result: Any, path: Path) -> int:
    import warnings

    import pyarrow.parquet as pq

    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = result.to_arrow_reader(FETCH_ROWS)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            count += batch.num_rows
    return count


def csv_text(columns: list[str], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(v, limit=None) for v in row] for row in rows)
    return buffer.getvalue()


__all__ = ["QueryError", "cell", "check_new_file", "csv_text", "out_format", "plain", "read_sql", "write_result"]
