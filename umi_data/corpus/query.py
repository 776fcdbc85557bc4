"""`python -m umi_data query DIR... "SQL"`: one statement over the DuckDB views of `umi_data.corpus.duck`,
printed as an aligned table, CSV, or one JSON array of row objects.

A sandbox: exactly one read-only statement (a query, `describe`/`show`/`summarize`, or `explain`
of one), on a restricted connection that reads the given corpus directories (and export
directories, for the leak checks of docs/recipes.md) and no other file."""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from umi_data.corpus.duck import DEFAULT_MEMORY_LIMIT, connect
from umi_data.corpus.query_out import QueryError, cell, check_new_file, csv_text, out_format, plain, read_sql, write_result

#: rows printed unless `--max-rows` says otherwise (all are counted; `--out FILE` writes all)
DEFAULT_MAX_ROWS = 1000
#: seconds before a query is interrupted (`--timeout`)
DEFAULT_TIMEOUT = 60.0
COUNT_BATCH = 65536


def read_only_statement(sql: str) -> Any:
    """The one statement of `sql`, parsed by DuckDB; `QueryError` for none, several, or one that
    is not a query."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip().replace("\n", " ")) from None
    if len(statements) != 1:
        raise QueryError(f"give exactly one SQL statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise QueryError(f"only read-only queries run here (select, with, describe, summarize, explain), not {kind.name}")
    return statements[0]


def _split_directories(directories: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(corpus directories, export directories): an export is read through the `exported` view."""
    from umi_data.exports.export import EXPORT_MANIFEST

    exports = [Path(d) for d in directories if (Path(d) / EXPORT_MANIFEST).is_file()]
    return [Path(d) for d in directories if Path(d) not in exports], exports


@dataclass
class QueryResult:
    """What `run_query` prints (`text`, on stdout) and says about it (`note`, one line on
    stderr, or None): the rows beyond `max_rows` are counted, not printed."""

    text: str
    note: str | None
    rows: int


def run_query(
    directories: Sequence[str], sql: str, fmt: str = "table", *, max_rows: int = DEFAULT_MAX_ROWS,
    timeout: float = DEFAULT_TIMEOUT, memory_limit: str = DEFAULT_MEMORY_LIMIT, out: Path | None = None,
) -> QueryResult:
    """Run `sql` in the sandbox of `umi_data.corpus.duck`, stopped after `timeout` seconds; print the
    first `max_rows` rows (all are counted), or write all of them to `out` (by its suffix)."""
    statement = read_only_statement(sql)
    if out is not None:
        out_format(out)
    corpora, exports = _split_directories(directories)
    if out is not None:
        check_new_file(out, [*corpora, *exports])
    if not corpora:
        raise QueryError("give at least one corpus directory (export directories are read beside one)")
    connection = connect(*corpora, readable=exports, memory_limit=memory_limit)
    timer = threading.Timer(timeout, connection.interrupt)
    timer.start()
    try:
        return _fetch(connection.execute(statement), fmt, max_rows, out)
    except Exception as exc:
        raise _query_error(exc, timeout) from None
    finally:
        timer.cancel()
        connection.close()


def _query_error(exc: Exception, timeout: float) -> Exception:
    """The one line for a failed query: DuckDB's or Arrow's message, or the timeout."""
    import duckdb
    import pyarrow as pa

    if isinstance(exc, duckdb.InterruptException):
        return QueryError(f"the query ran past --timeout {timeout:g} s and was stopped")
    if isinstance(exc, (duckdb.Error, pa.ArrowException)):
        return QueryError(str(exc).strip().replace("\n", " "))
    return exc


def _fetch(result: Any, fmt: str, max_rows: int, out: Path | None) -> QueryResult:
    columns = [d[0] for d in result.description] if result.description else []
    if out is not None:
        rows = write_result(result, out)
        return QueryResult("", f"{rows} row{'s' if rows != 1 else ''} -> {out}", rows)
    shown = result.fetchmany(max_rows) if columns else []
    total = len(shown)
    if len(shown) == max_rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total += sum(batch.num_rows for batch in result.to_arrow_reader(COUNT_BATCH))
    note = None
    if total > len(shown):
        note = f"printed the first {len(shown)} of {total} rows (--max-rows N for more, --out FILE for all)"
    text = {"table": _table, "csv": _csv, "json": _json}[fmt](columns, shown, total)
    return QueryResult(text, note, total)


def _json(columns: list[str], rows: list[tuple], total: int = 0) -> str:
    return json.dumps([dict(zip(columns, map(plain, row))) for row in rows], ensure_ascii=False) + "\n"


def _csv(columns: list[str], rows: list[tuple], total: int = 0) -> str:
    return csv_text(columns, rows)


def _table(columns: list[str], rows: list[tuple], total: int = 0) -> str:
    if not columns:
        return "OK\n"
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    total = max(total, len(rows))
    shown = "" if total == len(rows) else f", first {len(rows)} shown"
    out.append(f"({total} row{'s' if total != 1 else ''}{shown})")
    return "\n".join(out) + "\n"


__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_TIMEOUT", "QueryError", "QueryResult", "read_sql", "run_query"]
