"""SQL over corpus directories: DuckDB views that read the Parquet and JSONL files in place.

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
- `rejects`: `{source_file, locator, reason, detail}` per rejected record.

Once the views exist the connection is sandboxed unless the caller asks otherwise
(`restrict=False`): it reads the corpus files and nothing else (docs/guarantees.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from umi_data.corpus import CorpusNotFoundError, require_corpus
from umi_data.examples import ROLE_PATHS

TURN_FIELDS = (
    "role", "content", "diversity_prompt", "thought", "next", "empty_thought", "name", "arguments", "raw_arguments",
    "hallucinated", "response", "error", "truncated", "raw", "answer",
)
REJECT_COLUMNS = "{'source_file': 'VARCHAR', 'locator': 'VARCHAR', 'reason': 'VARCHAR', 'detail': 'VARCHAR'}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _union(directories: Sequence[Path], select: Callable[[Path], str]) -> str:
    """`select(directory)` over every corpus; file paths go in as quoted literals (a directory
    named `it's a corpus` is a path, never SQL)."""
    return "\nunion all by name\n".join(f"select *, {_literal(str(d))} as corpus from {select(d)}" for d in directories)


def _file(directory: Path, name: str) -> str:
    return _literal((directory / name).as_posix())


def view_sql(directories: Sequence[Path]) -> dict[str, str]:
    """The `create view` statement of each view, in dependency order."""
    trajectories = _union(directories, lambda d: f"read_parquet({_file(d, 'trajectories.parquet')})")
    examples = _union(directories, lambda d: "read_parquet([" + ", ".join(_file(d, f"{p}.parquet") for p in ROLE_PATHS.values()) + "])")
    rejects = _union(
        directories, lambda d: f"read_json({_file(d, 'rejects.jsonl')}, format = 'newline_delimited', columns = {REJECT_COLUMNS})"
    )
    turn_columns = ", ".join(f"turn.{field} as {field}" for field in TURN_FIELDS)
    return {
        "trajectories": trajectories,
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
        "examples": examples,
        "rejects": rejects,
    }


def connect(*directories: str | Path, database: str = ":memory:", restrict: bool = True, readable: Sequence[str | Path] = ()) -> Any:
    """A DuckDB connection with the corpus views over `directories` (at least one).

    By default the connection is then sandboxed (`restrict_connection`): it reads the corpus
    directories and `readable` (e.g. an export directory) and nothing else, writes no file,
    installs or loads no extension, and its configuration is locked. `restrict=False` gives
    DuckDB's full powers, for callers that run their own trusted SQL."""
    import duckdb

    if not directories:
        raise CorpusNotFoundError("connect() needs at least one corpus directory")
    paths = [require_corpus(Path(d).resolve()) for d in directories]
    connection = duckdb.connect(database)
    for name, sql in view_sql(paths).items():
        connection.execute(f"create or replace view {name} as {sql}")
    if restrict:
        restrict_connection(connection, [*paths, *(Path(r).resolve() for r in readable)])
    return connection


#: set once the views exist; `lock_configuration` last, so that no statement can undo the others
SANDBOX_SETTINGS = (
    ("temp_directory", "''"),  # no spill directory: nothing is written, not even under ./.tmp
    ("enable_external_access", "false"),
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("lock_configuration", "true"),
)


def restrict_connection(connection: Any, readable: Sequence[Path]) -> None:
    """Only files under `readable` can be read; no file access otherwise, no extensions, and the
    configuration is locked (DuckDB's `allowed_directories` + `enable_external_access=false`)."""
    directories = ", ".join(_literal(directory.as_posix().rstrip("/") + "/") for directory in readable)
    connection.execute(f"set allowed_directories = [{directories}]")
    for name, value in SANDBOX_SETTINGS:
        connection.execute(f"set {name} = {value}")


__all__ = ["CorpusNotFoundError", "SANDBOX_SETTINGS", "TURN_FIELDS", "connect", "restrict_connection", "view_sql"]
