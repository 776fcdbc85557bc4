"""What the scorer reads: answer directories or converted-answer files, grouped by test set.

An input is (1) a directory of ToolBench answer files (`{qid}_{method}.json`; the group is the
directory's name, e.g. `G1_instruction`), (2) a converted-answer file (`G1_instruction.json`;
the group is its stem), or (3) a directory holding several of either (one group each). The model
name is the parent directory's name (`virtual_chatgpt_cot/G1_instruction`), as in
StableToolBench's layout, unless given.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from umi_agent.jsonio import InputFileError, json_type, read_json
from umi_agent.passrate.convert import Conversion, Converted, Reject, convert_dir


class Group(BaseModel):
    """One test set of one run: its converted answers and what was left out."""

    name: str
    model: str
    source: str
    method: str | None = None  # None: read from a converted file
    conversion: Conversion


def is_answer_file(path: Path) -> bool:
    """Whether a JSON file is a ToolBench answer file (it has `answer_generation`)."""
    try:
        head = path.read_bytes()[:1_000_000]
    except OSError:
        return False
    return b'"answer_generation"' in head


def infer_method(directory: Path) -> str:
    """The one method of the directory's answer files (`{qid}_{method}.json`)."""
    methods = {p.name.split("_", 1)[1][:-5] for p in directory.glob("*.json") if "_" in p.name}
    if len(methods) != 1:
        found = ", ".join(sorted(methods)[:5]) or "none"
        raise InputFileError(f"{directory}: cannot tell the method from the file names (found: {found}); give --method")
    return methods.pop()


def read_converted(path: Path) -> Conversion:
    value = read_json(path, "a converted-answer file ({qid: {query, available_tools, answer}})")
    if not isinstance(value, dict):
        raise InputFileError(f"{path}: expected a converted-answer file (a JSON object by query id), got {json_type(value)}")
    answers, rejects = {}, []
    for qid, record in value.items():
        try:
            answers[str(qid)] = Converted.model_validate(record)
        except ValidationError as exc:
            rejects.append(Reject(file=f"{path.name}#{qid}", reason="bad converted answer", detail=str(exc).splitlines()[0][:300]))
    return Conversion(answers=answers, rejects=rejects)


def model_of(directory: Path) -> str:
    """A model's default name: its directory's, or for umi_agent.run's layout
    (`OUT/<agent>/answer/<group>/`) the agent's rather than `answer`."""
    directory = directory.resolve()
    return directory.parent.name if directory.name == "answer" and directory.parent.name else directory.name


def groups_of(path: Path, method: str | None, model: str | None, order: str = "sorted") -> list[Group]:
    """The groups an input names (see the module docstring)."""
    if path.is_file():
        return [Group(name=path.stem, model=model or model_of(path.parent), source=str(path), conversion=read_converted(path))]
    if not path.is_dir():
        raise InputFileError(f"{path}: no such file or directory (expected answer files or a converted-answer file)")
    files = sorted(path.glob("*.json"))
    if any(is_answer_file(f) for f in files[:8]):
        chosen = method or infer_method(path)
        return [Group(name=path.name, model=model or model_of(path.parent), source=str(path), method=chosen,
                      conversion=convert_dir(path, chosen, order))]
    found = [g for f in files for g in groups_of(f, method, model or model_of(path), order)]
    found += [g for d in sorted(p for p in path.iterdir() if p.is_dir()) if any(d.glob("*.json"))
              for g in groups_of(d, method, model or model_of(path), order)]
    if not found:
        raise InputFileError(f"{path}: holds no answer files and no converted-answer files")
    return found


def read_test_ids(path: Path | None, group: str) -> set[str] | None:
    """The query ids of a test set: a file ({id: ...} or [id, ...]) or a directory of
    `{group}.json` files (StableToolBench's `solvable_queries/test_query_ids/`)."""
    if path is None:
        return None
    file = path / f"{group}.json" if path.is_dir() else path
    value = read_json(file, "test query ids ({id: ...} or [id, ...])")
    if not isinstance(value, (dict, list)):
        raise InputFileError(f"{file}: expected test query ids ({{id: ...}} or [id, ...]), got {json_type(value)}")
    return {str(v) for v in value}


def load(paths: list[Path], method: str | None, model: str | None, order: str = "sorted") -> list[Group]:
    groups = [g for path in paths for g in groups_of(path, method, model, order)]
    seen: set[tuple[str, str]] = set()
    for group in groups:
        if (group.name, group.model) in seen:
            raise InputFileError(f"{group.source}: a second input for test set {group.name} of model {group.model}; "
                                 "give each once (or name the models with --model-name)")
        seen.add((group.name, group.model))
    return groups


def dump_json(value: object) -> bytes:
    """ToolEval's result files' layout (indent 4, UTF-8 text)."""
    return (json.dumps(value, ensure_ascii=False, indent=4) + "\n").encode("utf-8", "surrogatepass")
