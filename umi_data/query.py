"""`python -m umi_data query DIR... "SQL"`: one statement over the DuckDB views of `umi_data.duck`,
printed as an aligned table, CSV, or one JSON array of row objects.

A sandbox: exactly one read-only statement (a query, `describe`/`show`/`summarize`, or `explain`
of one), on a restricted connection that reads the given corpus directories (and export
directories, for the leak checks of docs/recipes.md) and no other file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from umi_data.duck import connect

MAX_CELL = 80


class QueryError(ValueError):
    """The SQL did not run (DuckDB's message says why)."""


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
    """(corpus directories, export directories): an export is readable with `read_json`, no views."""
    from umi_data.export import EXPORT_MANIFEST

    exports = [Path(d) for d in directories if (Path(d) / EXPORT_MANIFEST).is_file()]
    return [Path(d) for d in directories if Path(d) not in exports], exports


def run_query(directories: Sequence[str], sql: str, fmt: str = "table") -> str:
    import duckdb

    statement = read_only_statement(sql)
    corpora, exports = _split_directories(directories)
    connection = connect(*corpora, readable=exports)
    try:
        result = connection.execute(statement)
        columns = [d[0] for d in result.description] if result.description else []
        rows = result.fetchall() if columns else []
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip().replace("\n", " ")) from None
    finally:
        connection.close()
    return {"table": _table, "csv": _csv, "json": _json}[fmt](columns, rows)


def _plain(value: Any) -> Any:
    """JSON-ready values: DuckDB's JSON columns arrive as text and stay text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _json(columns: list[str], rows: list[tuple]) -> str:
    return json.dumps([dict(zip(columns, map(_plain, row))) for row in rows], ensure_ascii=False) + "\n"


def _csv(columns: list[str], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(v, limit=None) for v in row] for row in rows)
    return buffer.getvalue()


def _cell(value: Any, limit: int | None = MAX_CELL) -> str:
    if value is None:
        return "NULL" if limit else ""
    text = value if isinstance(value, str) else json.dumps(_plain(value), ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _table(columns: list[str], rows: list[tuple]) -> str:
    if not columns:
        return "OK\n"
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


__all__ = ["QueryError", "run_query"]
