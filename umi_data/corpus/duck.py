"""SQL over corpus directories: DuckDB views over the Parquet and JSONL files, read in place.

`connect(*dirs)` gives a connection with these views (nothing is copied; every view has a
`corpus` column naming the directory a row came from, so one query can span many corpora):

- `trajectories`: the canonical rows (`turns` and `tools` nested, `meta` as JSON);
- `turns`: one row per turn: `trajectory_id`, `source`, `index` (0-based), `role` and the
  fields of every role (`content`, `thought`, `next`, `name`, `arguments`, ... null where they
  do not apply);
- `tool_calls`: one row per caller turn with its observation: `name`, `arguments`,
  `raw_arguments`, `hallucinated`, `response`, `error`, `truncated` (null when no observation
  followed);
- `tools`: one row per tool offered in a trajectory: `name`, `description`, `parameters`;
- `examples`: every role example of `global/` and `local/`, with its `role` and `split`;
- `rejects`: `{source_file, locator, reason, detail}` per rejected record;
- `exported` (only with `readable=` export directories): every row of the export's JSONL files,
  with `file` (e.g. `stage1/backbone.jsonl`) and `export` (the directory).

Read-only by construction: DuckDB never opens a file itself. Each file is checked
(`umi_data.corpus.files`) and handed to DuckDB as a lazy Arrow dataset, so no path goes through
DuckDB's globbing; then DuckDB's local file system is switched off and its configuration locked
(`SANDBOX_SETTINGS`), so no statement can read, create or write any file (docs/guarantees.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from umi_data.corpus.layout import CorpusNotFoundError
from umi_data.corpus.files import CorpusFileError, CorpusFiles, corpus_files, export_files

TURN_FIELDS = (
    "role", "content", "diversity_prompt", "thought", "next", "empty_thought", "name", "arguments", "raw_arguments",
    "hallucinated", "response", "error", "truncated", "raw", "answer",
)
#: a query's working memory: DuckDB's default is 80% of the machine's RAM
DEFAULT_MEMORY_LIMIT = "2GB"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _union(selects: list[str]) -> str:
    return "\nunion all by name\n".join(selects)


def view_sql(corpora: Sequence[CorpusFiles], exports: Sequence[tuple[Path, dict[str, str]]] = ()) -> dict[str, str]:
    """The `create view` statement of each view, in dependency order, over the Arrow tables
    registered by `connect` (`_umi_<n>`: names, never paths, so nothing is globbed)."""
    def tables(kind: str) -> str:
        return _union([f"select *, {_literal(str(c.directory))} as corpus from {c.table(kind)}" for c in corpora])

    turn_columns = ", ".join(f"turn.{field} as {field}" for field in TURN_FIELDS)
    views = {
        "trajectories": tables("trajectories"),
        "turns": (
            f"select trajectory_id, source, corpus, index, {turn_columns} from ("
            "select id as trajectory_id, source, corpus, unnest(range(len(turns))) as index, unnest(turns) as turn "
            "from trajectories)"
        ),
        "tool_calls": (
            "select * exclude (role) from ("
            "select trajectory_id, source, corpus, index, role, name, arguments, raw_arguments, hallucinated, "
            + ", ".join(
                f"case when lead(role) over w = 'observation' then lead({field}) over w end as {field}"
                for field in ("response", "error", "truncated")
            )
            + " from turns window w as (partition by corpus, trajectory_id order by index)"
            ") where role = 'caller'"
        ),
        "tools": (
            "select trajectory_id, source, corpus, tool.name as name, tool.description as description, "
            "tool.parameters as parameters from ("
            "select id as trajectory_id, source, corpus, unnest(tools) as tool from trajectories)"
        ),
        "examples": tables("examples"),
        "rejects": tables("rejects"),
    }
    if exports:
        selects = [f"select *, {_literal(f)} as file, {_literal(str(d))} as export from {t}" for d, files in exports for f, t in files.items()]
        views["exported"] = _union(selects) if selects else "select null::varchar as file, null::varchar as export where false"
    return views


def connect(
    *directories: str | Path, database: str = ":memory:", restrict: bool = True, readable: Sequence[str | Path] = (),
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> Any:
    """A DuckDB connection with the corpus views over `directories` (at least one), and the
    `exported` view over the export directories `readable`.

    By default the connection is then sandboxed (`restrict_connection`): no file system, no
    extensions, `memory_limit`, configuration locked. `restrict=False` leaves DuckDB's full
    powers, for callers that run their own trusted SQL. Bad corpus files: `CorpusFileError`."""
    import duckdb

    if not directories:
        raise CorpusNotFoundError("connect() needs at least one corpus directory")
    corpora = [corpus_files(Path(d), n) for n, d in enumerate(directories)]
    exports = [export_files(Path(d), n) for n, d in enumerate(readable)]
    connection = duckdb.connect(database)
    try:
        for files in corpora:
            files.register(connection)
        for _, tables in exports:
            for table, dataset in tables.values():
                connection.register(table, dataset)
        named = [(d, {relative: table for relative, (table, _) in tables.items()}) for d, tables in exports]
        for name, sql in view_sql(corpora, named).items():
            connection.execute(f"create or replace view {name} as {sql}")
        if restrict:
            restrict_connection(connection, memory_limit)
    except BaseException:
        connection.close()
        raise
    return connection


#: set once the views exist; `lock_configuration` last, so that no statement can undo the others
SANDBOX_SETTINGS = (
    ("temp_directory", "''"),  # no spill directory: nothing is written, not even under ./.tmp
    ("disabled_filesystems", "'LocalFileSystem'"),  # DuckDB opens no local file at all, to read or to write
    ("enable_external_access", "false"),  # nor any other (http, s3, extensions' file systems)
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("lock_configuration", "true"),
)


def restrict_connection(connection: Any, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> None:
    """No file access of any kind (the corpus files reach DuckDB as Arrow datasets, registered
    before), no extensions, a memory limit, and the configuration locked."""
    connection.execute(f"set memory_limit = {_literal(memory_limit)}")
    for name, value in SANDBOX_SETTINGS:
        connection.execute(f"set {name} = {value}")


__all__ = [
    "CorpusFileError", "CorpusNotFoundError", "DEFAULT_MEMORY_LIMIT", "SANDBOX_SETTINGS", "TURN_FIELDS", "connect",
    "restrict_connection", "view_sql",
]
