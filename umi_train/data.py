"""Training data from a corpus directory: role examples selected by role and split, a held-out
slice of instructions for the eval loss, and the encoded `datasets.Dataset`s.

The eval slice is keyed by instruction (all examples of one task stay on one side), from a
hash independent of the A/B split, so it is the same for every role and every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from umi_data.rendering.examples import ROLE_PATHS
from umi_train.config import UsageError
from umi_train.encode import encode

MANIFEST = "manifest.json"
DEFAULT_MAX_LENGTH = 4096
EVAL_SALT = "umi-train-eval"


def check_corpus(corpus: Path) -> Path:
    """The corpus's manifest path; a directory without one is missing or incomplete, and a corpus
    that accepted no record is refused (a tokenizer or an adapter trained on nothing is no model)."""
    manifest = corpus / MANIFEST
    if not corpus.is_dir():
        raise UsageError(f"--corpus {corpus}: no such directory")
    if not manifest.is_file():
        raise UsageError(
            f"--corpus {corpus}: no {MANIFEST}; expected a complete corpus directory built by `umi-data build`"
        )
    counts = json.loads(manifest.read_text()).get("counts", {})
    if not counts.get("accepted"):
        raise UsageError(f"--corpus {corpus}: the corpus is empty (0 of {counts.get('read', 0)} records accepted; see its rejects.jsonl)")
    return manifest


def read_role_rows(corpus: Path, role: str) -> list[dict[str, Any]]:
    """All example rows of one role corpus, in file order."""
    import pyarrow.parquet as pq

    path = corpus / f"{ROLE_PATHS[role]}.parquet"
    if not path.is_file():
        raise UsageError(f"--corpus {corpus}: {path.relative_to(corpus)} is missing")
    columns = ["example_id", "instruction_id", "role", "input", "target", "split"]
    return pq.read_table(path, columns=columns).to_pylist()


def select_examples(corpus: Path, roles: Sequence[str], split: str | None) -> list[dict[str, Any]]:
    """The rows of `roles` (in that order) in `split` (None: all); an empty selection is an error."""
    check_corpus(corpus)
    rows = [row for role in roles for row in read_role_rows(corpus, role) if split in (None, row["split"])]
    if not rows:
        where = f"split {split}" if split else "any split"
        raise UsageError(f"--corpus {corpus}: no {'/'.join(roles)} examples in {where}")
    return rows


def _eval_rank(instruction_id: str) -> str:
    return hashlib.sha256(f"{EVAL_SALT}\x00{instruction_id}".encode()).hexdigest()


def held_out_instructions(instruction_ids: Sequence[str], fraction: float) -> frozenset[str]:
    """round(fraction x instructions) instructions, at least one when there are two or more and
    `fraction` > 0, never all of them; the same ones for a given set of instructions."""
    unique = sorted(set(instruction_ids), key=_eval_rank)
    if fraction <= 0 or len(unique) < 2:
        return frozenset()
    count = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    return frozenset(unique[:count])


@dataclass(frozen=True)
class Selection:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    eval_instructions: frozenset[str]


def split_eval(rows: list[dict[str, Any]], fraction: float, max_eval: int = 0) -> Selection:
    """Hold out `fraction` of the instructions; evaluate on at most `max_eval` of their examples
    (evenly spaced, 0: all), because on a CPU smoke run evaluating hundreds of examples at every
    eval step costs more than the training. Capped examples are still kept out of training."""
    held = held_out_instructions([row["instruction_id"] for row in rows], fraction)
    train = [row for row in rows if row["instruction_id"] not in held]
    evaluated = [row for row in rows if row["instruction_id"] in held]
    if max_eval and len(evaluated) > max_eval:
        evaluated = [evaluated[i * len(evaluated) // max_eval] for i in range(max_eval)]
    return Selection(train, evaluated, held)


def encode_rows(rows: list[dict[str, Any]], tokenizer: Any, max_length: int, compat: str | None, prompt_format: str = "alpha-umi",
                tool_docs: str = "full") -> Any:
    """A `datasets.Dataset` of input_ids, labels, length (for length grouping), truncated (input
    tokens cut to fit) and example_id."""
    import datasets

    columns: dict[str, list[Any]] = {"input_ids": [], "labels": [], "length": [], "truncated": [], "example_id": []}
    for row in rows:
        encoded = encode(row["input"], row["target"], tokenizer, max_length, compat=compat, prompt_format=prompt_format,
                         tool_docs=tool_docs, example_id=row["example_id"])
        for name in ("input_ids", "labels", "truncated"):
            columns[name].append(encoded[name])
        columns["length"].append(len(encoded["input_ids"]))
        columns["example_id"].append(row["example_id"])
    return datasets.Dataset.from_dict(columns)


def position_limit(model_dir: Path) -> int | None:
    """The longest sequence the model accepts (`max_position_embeddings`, GPT-2's `n_positions`)."""
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model_dir), "max_position_embeddings", None)


def resolve_max_length(requested: int | None, limit: int | None) -> tuple[int, str | None]:
    """`--max-length` bounded by the model's positions (learned position embeddings index out of
    range past them), and the one-line note when the bound changed it."""
    wanted = requested or DEFAULT_MAX_LENGTH
    if limit is None or wanted <= limit:
        return wanted, None
    given = f"--max-length {requested}" if requested else f"the default max length {DEFAULT_MAX_LENGTH}"
    return limit, f"{given} is more than the model's {limit} positions; training on at most {limit} tokens per example"
