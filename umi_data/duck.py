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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from umi_data.corpus import CorpusNotFoundError, require_corpus
from umi_data.examples import ROLE_PATHS

TURN_FIELDS = (
    "role", "content", "diversity_prompt", "thought", "next", "empty_thought", "name", "arguments", "raw_arguments",
    "hallucinated", "response", "error", "truncated", "raw", "answer",
)
REJECT_COLUMNS = "{'source_file': 'VARCHAR', 'locator': 'VARCHAR', 'reason': 'VARCHAR', 'detail': 'VARCHAR'}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _union(directories: Sequence[Path], select: str) -> str:
    """`select` (with `{path}` for the directory and `{corpus}` for its literal) over every corpus."""
    parts = [select.format(path=d.as_posix(), corpus=_literal(str(d))) for d in directories]
    return "\nunion all by name\n".join(parts)


def view_sql(directories: Sequence[Path]) -> dict[str, str]:
    """The `create view` statement of each view, in dependency order."""
    trajectories = _union(directories, "select *, {corpus} as corpus from read_parquet('{path}/trajectories.parquet')")
    examples = _union(
        directories,
        "select *, {corpus} as corpus from read_parquet([" + ", ".join(f"'{{path}}/{p}.parquet'" for p in ROLE_PATHS.values()) + "])",
    )
    rejects = _union(
        directories,
        "select *, {corpus} as corpus from read_json('{path}/rejects.jsonl', format = 'newline_delimited', columns = "
        + REJECT_COLUMNS.replace("{", "{{").replace("}", "}}") + ")",
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


def connect(*directories: str | Path, database: str = ":memory:") -> Any:
    """A DuckDB connection with the corpus views over `directories` (at least one)."""
    import duckdb

    if not directories:
        raise CorpusNotFoundError("connect() needs at least one corpus directory")
    paths = [require_corpus(Path(d).resolve()) for d in directories]
    connection = duckdb.connect(database)
    for name, sql in view_sql(paths).items():
        connection.execute(f"create or replace view {name} as {sql}")
    return connection


__all__ = ["CorpusNotFoundError", "TURN_FIELDS", "connect", "view_sql"]
