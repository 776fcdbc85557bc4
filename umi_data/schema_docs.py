"""JSON Schema documents: the core models' (generated from pydantic) and the raw source formats'
(hand-written, in umi_data/schemas/sources), written together into the repository's `schemas/`
by `python -m umi_data schemas`, and `validate`, which checks raw files against them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from umi_data.core import Reject, RejectReason, Trajectory, find_unstorable
from umi_data.sources import get_source, read_source
from umi_data.sources.base import (
    SCHEMA_PACKAGE, InputFile, Source, discover_files, is_json_lines, json_lines, load_bytes, load_json, schema_errors, text_name,
)
from umi_data.plumbing.write import atomic_open

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CORE_MODELS = {"trajectory.schema.json": Trajectory, "reject.schema.json": Reject}


def core_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for filename, model in CORE_MODELS.items():
        schema = model.model_json_schema()
        out[filename] = {"$schema": SCHEMA_DIALECT, "$id": f"umi:{filename}", **schema}
    return out


def source_schemas() -> dict[str, str]:
    """The hand-written raw-format schemas, as their exact text."""
    folder = resources.files(SCHEMA_PACKAGE)
    return {f"sources/{p.name}": p.read_text("utf-8") for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".schema.json")}


def render_schema_files() -> dict[str, str]:
    """Every file of `schemas/` with its exact content."""
    files = {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for name, schema in core_schemas().items()}
    files.update(source_schemas())
    return files


def write_schemas(out: Path) -> list[Path]:
    written = []
    for name, text in render_schema_files().items():
        path = out / name
        with atomic_open(path, "w") as handle:
            handle.write(text)
        written.append(path)
    return written


@dataclass(frozen=True)
class FileProblem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


def validate_files(source_name: str, paths: Sequence[str]) -> tuple[int, list[FileProblem]]:
    """(files checked, every problem) for raw files of a source: unreadable or non-JSON files,
    each schema violation with its JSON path, and values no umi file can store (a lone
    surrogate, NaN), in the file or in the text its records hold (observations, arguments)."""
    source = get_source(source_name)
    files = discover_files(paths, source.suffixes)
    problems = []
    for file in files:
        shown = text_name(file.path)
        if is_json_lines(source, file):
            problems.extend(_json_lines_problems(source, file, shown))
            problems.extend(FileProblem(shown, r.locator, f"{r.reason.value}: {r.detail}") for r in build_rejects(source_name, file))
            continue
        loaded = load_json(file)
        if loaded.reject is not None:
            problems.append(FileProblem(shown, "$", f"{loaded.reject.reason.value}: {loaded.reject.detail}"))
            continue
        if not loaded.checked:  # read by Python's json: strings may hold lone surrogates
            problem = find_unstorable(loaded.value)
            if problem is not None:
                reason = RejectReason.INVALID_TEXT if problem.text else RejectReason.INVALID_JSON
                problems.append(FileProblem(shown, problem.path, f"{reason.value}: {problem.problem}"))
                continue  # schema messages would quote the bad text
        one_record = source.records_per_file == "records" and isinstance(loaded.value, dict)
        errors = schema_errors(loaded.value, source.schema, "record" if one_record else "file")
        problems.extend(FileProblem(shown, e.path, e.message) for e in errors)
        problems.extend(FileProblem(shown, r.locator, f"{r.reason.value}: {r.detail}") for r in build_rejects(source_name, file))
    return len(files), list(dict.fromkeys(problems))  # a line that does not parse is both a file problem and a build reject


def _json_lines_problems(source: Source, file: InputFile, shown: str) -> list[FileProblem]:
    """The problems of a JSON Lines file: each line checked as one record at `$[i]`."""
    loaded = load_bytes(file)
    if loaded.reject is not None:
        return [FileProblem(shown, "$", f"{loaded.reject.reason.value}: {loaded.reject.detail}")]
    problems = []
    for index, _, parsed in json_lines(file, loaded.data):
        where = f"$[{index}]"
        if parsed.reject is not None:
            problems.append(FileProblem(shown, where, f"{parsed.reject.reason.value}: {parsed.reject.detail}"))
            continue
        problem = None if parsed.checked else find_unstorable(parsed.value, where)
        if problem is not None:
            reason = RejectReason.INVALID_TEXT if problem.text else RejectReason.INVALID_JSON
            problems.append(FileProblem(shown, problem.path, f"{reason.value}: {problem.problem}"))
            continue
        problems.extend(FileProblem(shown, e.path, e.message) for e in schema_errors(parsed.value, source.schema, "record", where))
    return problems


def build_rejects(source_name: str, file: Any) -> list[Reject]:
    """The records of `file` that `build` rejects, with its reasons: `build`'s own conversion of
    the file (reading, converting, the storability check, rendering), nothing written. So
    `validate` and `build` give one answer to "is this file good" (valid_data: false,
    unstorable text, a call to no listed tool...), from one code path."""
    from umi_data.building.fields import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED
    from umi_data.building.parts import PartTask, convert_part

    part = convert_part(PartTask(source_name, [file], {}, False, DEFAULT_SPLIT_SEED, DEFAULT_SPLIT_RATIO))
    return [Reject.model_validate_json(line) for line in part.rejects]


def reject_counts(problems: Sequence[FileProblem]) -> dict[str, int]:
    """How many of `problems` are build rejects, by reason (the summary line of `validate`)."""
    reasons = {reason.value for reason in RejectReason}
    counts: dict[str, int] = {}
    for problem in problems:
        reason = problem.message.split(":", 1)[0]
        if reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return counts
