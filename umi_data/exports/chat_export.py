"""`python -m umi_data export --format openai|trl-chat|llamafactory-sharegpt|hermes`: chat datasets.

The variant's stages and parts are those of `umi_data.rendering.variants`; in the chat formats a part
holds chats (`umi_data.exports.chat`):

- `backbone` (stage 1 of reuse / no-reuse, and `--variant single`): each trajectory as one chat,
  the Single-LLM view (`to_chat_messages`: thoughts as assistant content beside the tool calls,
  results linked by id, the final answer last), restricted to the stage's instruction split;
- `planner`, `caller`, `summarizer` (and `multi_task`, their union): each α-UMi role example of
  the corpus as a two-message chat, its prompt as the user message and its target as the only
  assistant message, so the assistant turns are exactly that role's targets (`role_chat`).

Layout: `OUT/<stage>/<part>.jsonl` (openai, hermes), `OUT/<stage>/<part>.json` and
`OUT/dataset_info.json` (llamafactory-sharegpt; use `dataset_dir: OUT`, datasets
`umi_<stage>_<part>`), `OUT/<stage>/<part>/train.parquet` + `README.md` (trl-chat:
`datasets.load_dataset(OUT/<stage>/<part>, split="train")`, `messages` and `tools` as `Json`
columns, datasets >= 4.7). An example a format cannot express is written to `OUT/rejects.jsonl`
with its reason and counted per file in `OUT/export.json`, never dropped silently.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from umi_data.exports.chat import ChatExample, ChatReject, role_chat, to_chat_messages
from umi_data.exports.chat_formats import OPENAI_MAX_FILE_BYTES, OPENAI_MAX_TOKENS, RECORDS
from umi_data.corpus.layout import MANIFEST, TRAJECTORIES
from umi_data.rendering.examples import ROLE_PATHS, assign_split
from umi_data.rendering.variants import Part, Stage, Variant
from umi_data.plumbing.write import JsonArrayWriter, JsonlWriter, atomic_open, file_entry, write_json

CHAT_FORMATS = tuple(RECORDS)
REJECTS = "rejects.jsonl"
PARQUET_BATCH = 512
SHAREGPT_TAGS = {
    "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
    "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system",
}


@dataclass
class PartResult:
    rows: int = 0
    instructions: set[str] = field(default_factory=set)
    rejects: dict[str, int] = field(default_factory=dict)


def chat_path(fmt: str, stage: Stage, part: Part) -> str:
    """The file (or, for trl-chat, the dataset directory) of one part, relative to OUT."""
    suffix = {"openai": ".jsonl", "hermes": ".jsonl", "llamafactory-sharegpt": ".json", "trl-chat": ""}[fmt]
    return f"{stage.name}/{part.name}{suffix}"


def write_chat_export(corpus: Path, variant: Variant, out: Path, fmt: str, max_tokens: int = OPENAI_MAX_TOKENS) -> dict[str, Any]:
    """Write every part of `variant` in chat format `fmt`; return the manifest's `stages` and
    `rejects` (the rejects file is written here too)."""
    config = json.loads((corpus / MANIFEST).read_text())["config"]
    split_of = lambda instruction_id: assign_split(instruction_id, config["split_seed"], config["split_ratio"])  # noqa: E731
    stages: dict[str, Any] = {}
    totals: dict[str, int] = {}
    with atomic_open(out / REJECTS) as rejects:
        for stage in variant.stages:
            files = {}
            for part in stage.parts:
                relative = chat_path(fmt, stage, part)
                examples = _examples(corpus, stage, part, split_of)
                result = _write_part(out / relative, fmt, examples, max_tokens, _reject_sink(rejects, stage, part, totals))
                files[part.name] = {"path": relative, "roles": list(part.roles), **_entry(out / relative, fmt, result)}
            stages[stage.name] = {"init": stage.init, "split": stage.split or "all", "files": files}
    return {"stages": stages, "rejects": {"file": REJECTS, "total": sum(totals.values()), "by_reason": dict(sorted(totals.items()))}}


def _reject_sink(handle: Any, stage: Stage, part: Part, totals: dict[str, int]) -> Callable[[str, ChatReject], None]:
    def sink(example_id: str, reject: ChatReject) -> None:
        totals[reject.reason] = totals.get(reject.reason, 0) + 1
        record = {"stage": stage.name, "part": part.name, "id": example_id, "reason": reject.reason, "detail": reject.detail}
        handle.write(orjson.dumps(record) + b"\n")
    return sink


Example = tuple[str, str, Callable[[], ChatExample]]


def _examples(corpus: Path, stage: Stage, part: Part, split_of: Callable[[str], str]) -> Iterator[Example]:
    """(id, instruction id, build the chat) of every example of a part, in corpus order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if part.roles == ("backbone",):
        from umi_data.corpus.rows import read_trajectories

        for trajectory in read_trajectories(str(corpus / TRAJECTORIES)):
            if stage.split is None or split_of(trajectory.instruction_id) == stage.split:
                yield trajectory.id, trajectory.instruction_id, lambda t=trajectory: to_chat_messages(t)
        return
    for role in part.roles:
        for batch in pq.ParquetFile(corpus / f"{ROLE_PATHS[role]}.parquet").iter_batches(columns=["example_id", "instruction_id", "input", "target", "split"]):
            if stage.split is not None:
                batch = batch.filter(pc.equal(batch.column("split"), stage.split))
            for row in batch.to_pylist():
                yield row["example_id"], row["instruction_id"], lambda r=row: role_chat(r["example_id"], r["input"], r["target"])


def _write_part(path: Path, fmt: str, examples: Iterator[Example], max_tokens: int, reject: Callable[[str, ChatReject], None]) -> PartResult:
    result = PartResult()
    record = (lambda example: RECORDS[fmt](example, max_tokens)) if fmt == "openai" else RECORDS[fmt]
    with _writer(path, fmt) as write:
        for example_id, instruction_id, build in examples:
            try:
                write(record(build()))
            except ChatReject as problem:
                reject(example_id, problem)
                result.rejects[problem.reason] = result.rejects.get(problem.reason, 0) + 1
                continue
            result.rows += 1
            result.instructions.add(instruction_id)
    return result


@contextmanager
def _writer(path: Path, fmt: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """`write(record)` for one part file of a format; the file lands when the block ends without error."""
    if fmt == "trl-chat":
        with atomic_open(path / "train.parquet") as handle:
            chats = _ParquetChats(handle)
            yield chats.write
            chats.close()
        return
    with atomic_open(path) as handle:
        array = JsonArrayWriter(handle) if fmt == "llamafactory-sharegpt" else None
        size = 0

        def write(record: dict[str, Any]) -> None:
            nonlocal size
            line = orjson.dumps(record)
            if fmt == "openai" and size + len(line) + 1 > OPENAI_MAX_FILE_BYTES:
                raise ChatReject("file_too_large", f"the JSONL would pass OpenAI's {OPENAI_MAX_FILE_BYTES >> 20} MB file limit")
            size += len(line) + 1
            array.write_raw(line) if array is not None else handle.write(line + b"\n")

        yield write
        if array is not None:
            array.close()


class _ParquetChats:
    """`train.parquet` of a trl-chat part: `id`, `messages`, `tools`, the last two as Arrow's JSON
    extension type with the `datasets` feature metadata, so `load_dataset` gives `Json` columns."""

    FEATURES = {"id": {"dtype": "string", "_type": "Value"}, "messages": {"_type": "Json"}, "tools": {"_type": "Json"}}

    def __init__(self, handle: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        json_type = pa.json_(pa.string())
        self.schema = pa.schema([("id", pa.string()), ("messages", json_type), ("tools", json_type)],
                                metadata={"huggingface": json.dumps({"info": {"features": self.FEATURES}})})
        self.writer = pq.ParquetWriter(handle, self.schema, compression="zstd")
        self.batch: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.batch.append(record)
        if len(self.batch) >= PARQUET_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        columns: dict[str, Any] = {"id": pa.array([r["id"] for r in self.batch], pa.string())}
        for name in ("messages", "tools"):
            storage = pa.array([orjson.dumps(r[name]).decode() for r in self.batch], pa.string())
            columns[name] = pa.ExtensionArray.from_storage(self.schema.field(name).type, storage)
        self.writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))
        self.batch = []

    def close(self) -> None:
        self._flush()  # an empty batch still writes the schema: a part without examples loads as 0 rows
        self.writer.close()


#: OpenAI starts no fine-tuning job on fewer examples than this.
OPENAI_MIN_EXAMPLES = 10


def _entry(path: Path, fmt: str, result: PartResult) -> dict[str, Any]:
    counts = {"rows": result.rows, "instructions": len(result.instructions), "rejected": sum(result.rejects.values()),
              "rejects": dict(sorted(result.rejects.items()))}
    if fmt == "openai" and result.rows < OPENAI_MIN_EXAMPLES:
        counts["note"] = f"OpenAI needs at least {OPENAI_MIN_EXAMPLES} examples to start a fine-tuning job"
    if fmt != "trl-chat":
        return file_entry(path, **counts)
    _write_card(path, counts)
    return {**file_entry(path / "train.parquet"), **counts}


def _write_card(directory: Path, counts: dict[str, Any]) -> None:
    """The card people read the columns from. No YAML `configs` block: with one, `datasets` keys its
    cache on the relative `train.parquet` and serves one export's rows for another's (datasets 5.2);
    without, it finds `train.parquet` as the train split by its name, keyed on the real file."""
    text = (
        "---\ntags:\n- umi\n- tool-use\n- conversational\n---\n"
        f"# umi chat export ({directory.parent.name}/{directory.name})\n\n"
        f"{counts['rows']} conversations for TRL's SFTTrainer (conversational, with tools); {counts['rejected']} "
        "example(s) a chat cannot express are listed in the export's rejects.jsonl.\n\n"
        "- `messages`: OpenAI-shaped messages; assistant `tool_calls` carry `arguments` as an object; `tool` messages "
        "carry `tool_call_id` and the function `name`.\n- `tools`: the tool schemas `{type: function, function: {...}}`.\n\n"
        "Load with `datasets.load_dataset(this_directory, split=\"train\")` (datasets >= 4.7: `Json` columns). "
        "Train only the assistant turns with `SFTConfig(assistant_only_loss=True)` and a chat template with "
        "`{% generation %}` markers, e.g. umi_train/templates/chatml_tools.jinja.\n"
    )
    with atomic_open(directory / "README.md") as handle:
        handle.write(text.encode())


def sharegpt_dataset_info(variant: Variant) -> dict[str, Any]:
    """LLaMA-Factory's registry entries: one sharegpt dataset with tools per exported file."""
    return {
        f"umi_{stage.name}_{part.name}": {
            "file_name": chat_path("llamafactory-sharegpt", stage, part),
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": SHAREGPT_TAGS,
        }
        for stage in variant.stages
        for part in stage.parts
    }


def write_dataset_info(out: Path, variant: Variant) -> None:
    write_json(out / "dataset_info.json", sharegpt_dataset_info(variant))


__all__ = ["CHAT_FORMATS", "REJECTS", "chat_path", "sharegpt_dataset_info", "write_chat_export", "write_dataset_info"]
