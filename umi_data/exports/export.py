"""`python -m umi_data export`: one training variant of a corpus directory, for other trainers.

Writes `OUT/stage1/` and/or `OUT/stage2/` (the stages of the variant, `umi_data.rendering.variants`), one
file per model to train, and `OUT/export.json` last (what was written, from which corpus, and
what each stage starts from). Formats:

- `jsonl`: the example rows with all their columns, `<part>.jsonl`;
- `trl`: `{"prompt", "completion"}` lines, `<part>.jsonl` (TRL's prompt-completion datasets;
  SFTTrainer computes the loss on the completion and appends the EOS token itself); the prompt's
  final whitespace starts the completion, so that the prompt is a token prefix of the whole
  (`prompt_completion`);
- token ids (`python -m umi_train.export`, which needs a tokenizer): `{"input_ids",
  "completion_mask"}` lines equal to what umi trains on (`umi_train.encode`);
- `llamafactory`: alpaca-style `{"instruction", "input", "output"}` arrays, `<part>.json`, and
  `OUT/dataset_info.json` naming each as `umi_<stage>_<part>` (use `dataset_dir: OUT`);
- `alpha-umi`: the official trainer's `train_<part>.json` arrays of `{"input", "target"}` (the
  two fields it trains on; the structured `tools` and `history` of compat builds are under the
  corpus's `alpha_umi/`);
- chat formats `openai`, `trl-chat`, `llamafactory-sharegpt`, `hermes` (`umi_data.exports.chat_export`):
  the backbone part as whole trajectories in chat form (the Single-LLM view), the role parts
  as one chat per role example; what a format cannot express goes to `rejects.jsonl`, counted.

Rows keep the corpus order, so the same corpus and options give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq

import umi_data
from umi_data.corpus.layout import MANIFEST, require_corpus
from umi_data.rendering.examples import ROLE_PATHS
from umi_data.plumbing.outdir import Output, OutputClaim, claim_out_dir
from umi_data.rendering.variants import CHAT_FORMATS, EXPORT_FORMATS, Part, Stage, Variant, get_variant
from umi_data.plumbing.write import JsonArrayWriter, JsonlWriter, atomic_open, file_entry, sha256_file, write_json

Format = Literal["jsonl", "trl", "llamafactory", "alpha-umi", "openai", "trl-chat", "llamafactory-sharegpt", "hermes"]
FORMATS = EXPORT_FORMATS
EXPORT_MANIFEST = "export.json"
DATASET_INFO = "dataset_info.json"
BATCH_ROWS = 4096
def export_record(directory: Path) -> dict[str, str] | None:
    """What an older umi recorded writing into an export directory before the lock held a record:
    the stage files its `export.json` (kind `umi-export`) lists with their sha256; None when
    there is no such manifest (a file merely named export.json is not one)."""
    try:
        manifest = orjson.loads((directory / EXPORT_MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    stages = manifest.get("stages") if isinstance(manifest, dict) and manifest.get("kind") == "umi-export" else None
    entries = [e for stage in stages.values() if isinstance(stage, dict) for e in (stage.get("files") or {}).values()] if isinstance(stages, dict) else []
    if not entries or not all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str) for e in entries):
        return None
    return {**{e["path"]: e["sha256"] for e in entries}, EXPORT_MANIFEST: sha256_file(directory / EXPORT_MANIFEST)}


EXPORT_OUTPUT = Output(command="umi-data export", markers=(EXPORT_MANIFEST,), owns=("stage1", "stage2", DATASET_INFO, "rejects.jsonl", EXPORT_MANIFEST),
                       legacy_record=export_record)


class ExportError(ValueError):
    """A corpus or output directory that cannot be used (a usage error)."""


def _file_name(fmt: str, part: Part) -> str:
    if fmt == "alpha-umi":
        return f"train_{part.name}.json"
    return f"{part.name}.json" if fmt == "llamafactory" else f"{part.name}.jsonl"


Record = Callable[[dict[str, Any]], dict[str, Any]]


def prompt_completion(row: dict[str, Any]) -> dict[str, str]:
    """TRL's `{prompt, completion}`, with the whitespace that ends the prompt moved to the start of
    the completion. TRL tokenizes the prompt alone and prompt + completion in one piece; umi's
    prompts end in a space (`"... caller: "`), which tokenizers merge with the next word, so the
    prompt's tokens would not be a prefix of the whole (TRL then warns and trains on a context
    that differs from inference). Ending the prompt on a non-space character puts the boundary on
    a token boundary for word-splitting tokenizers (checked for umi's tiny tokenizer and SmolLM2's
    in tests/test_export_training.py). The text is unchanged: prompt + completion = input + target."""
    prompt = row["input"].rstrip()
    return {"prompt": prompt, "completion": row["input"][len(prompt):] + row["target"]}


_RECORD: dict[str, Record] = {
    "jsonl": lambda row: row,
    "trl": prompt_completion,
    "llamafactory": lambda row: {"instruction": row["input"], "input": "", "output": row["target"]},
    "alpha-umi": lambda row: {"input": row["input"], "target": row["target"]},
}


def export_variant(
    corpus: Path, variant_name: str, out: Path, fmt: str = "jsonl", force: bool = False, *,
    record: Record | None = None, details: dict[str, Any] | None = None, max_tokens: int | None = None,
) -> dict[str, Any]:
    """Write one variant of `corpus` into `out` (new, empty, or an earlier export, replaced as a
    whole) and return the export manifest.

    With `record`, `fmt` names a format of the caller's: each example row becomes
    `record(row)`, one JSON line per example, and `details` goes into the manifest. This is how
    `umi_train.export` writes token ids while the data side never imports a tokenizer."""
    variant = get_variant(variant_name)
    if record is None and fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    corpus_manifest = _corpus_manifest(corpus)
    with claim_out_dir(out, EXPORT_OUTPUT, force) as claim:
        if record is None and fmt in CHAT_FORMATS:
            return _write_chat(corpus, corpus_manifest, variant, out, fmt, claim, max_tokens)
        return _write_export(corpus, corpus_manifest, variant, out, fmt, claim, record or _RECORD[fmt], details)


def _write_export(corpus: Path, corpus_manifest: str, variant: Variant, out: Path, fmt: str, claim: OutputClaim,
                  to_record: Record, details: dict[str, Any] | None) -> dict[str, Any]:
    (out / EXPORT_MANIFEST).unlink(missing_ok=True)  # incomplete until the new one lands
    stages = {stage.name: _write_stage(corpus, stage, out, fmt, to_record) for stage in variant.stages}
    manifest = {
        "kind": "umi-export",
        "umi_version": umi_data.__version__,
        "variant": variant.name,
        "paper_row": variant.paper_row,
        "description": variant.description,
        "format": fmt,
        "corpus": {"path": str(corpus), "manifest_sha256": corpus_manifest},
        **(details or {}),
        "stages": stages,
    }
    if fmt == "llamafactory":
        write_json(out / DATASET_INFO, _dataset_info(variant))
    written = [entry["path"] for stage in stages.values() for entry in stage["files"].values()]
    hashes = {entry["path"]: entry["sha256"] for stage in stages.values() for entry in stage["files"].values()}
    claim.sweep([*written, DATASET_INFO if fmt == "llamafactory" else EXPORT_MANIFEST, EXPORT_MANIFEST], hashes)
    write_json(out / EXPORT_MANIFEST, manifest)
    claim.record(EXPORT_MANIFEST)
    return manifest


def _write_chat(corpus: Path, corpus_manifest: str, variant: Variant, out: Path, fmt: str, claim: OutputClaim,
                max_tokens: int | None) -> dict[str, Any]:
    from umi_data.exports.chat_export import REJECTS, write_chat_export, write_dataset_info
    from umi_data.exports.chat_formats import OPENAI_MAX_TOKENS

    (out / EXPORT_MANIFEST).unlink(missing_ok=True)  # incomplete until the new one lands
    limit = max_tokens or OPENAI_MAX_TOKENS
    written = write_chat_export(corpus, variant, out, fmt, limit)
    manifest = {
        "kind": "umi-export", "umi_version": umi_data.__version__, "variant": variant.name, "paper_row": variant.paper_row,
        "description": variant.description, "format": fmt,
        "corpus": {"path": str(corpus), "manifest_sha256": corpus_manifest},
        **({"max_tokens": limit} if fmt == "openai" else {}),
        **written,
    }
    keep = [entry["path"] for stage in written["stages"].values() for entry in stage["files"].values()]
    if fmt == "llamafactory-sharegpt":
        write_dataset_info(out, variant)
        keep.append(DATASET_INFO)
    claim.sweep([*keep, REJECTS, EXPORT_MANIFEST])
    write_json(out / EXPORT_MANIFEST, manifest)
    claim.record(EXPORT_MANIFEST)
    return manifest


def _corpus_manifest(corpus: Path) -> str:
    manifest = require_corpus(corpus) / MANIFEST
    for path in ROLE_PATHS.values():
        if not (corpus / f"{path}.parquet").is_file():
            raise ExportError(f"{corpus}: {path}.parquet is missing; rebuild the corpus with this version of umi")
    return sha256_file(manifest)


def _write_stage(corpus: Path, stage: Stage, out: Path, fmt: str, to_record: Record) -> dict[str, Any]:
    files = {}
    for part in stage.parts:
        relative = f"{stage.name}/{_file_name(fmt, part)}"
        rows, instructions = _write_part(corpus, part, stage.split, out / relative, fmt, to_record)
        files[part.name] = {"path": relative, "roles": list(part.roles), **file_entry(out / relative, rows=rows, instructions=instructions)}
    return {"init": stage.init, "split": stage.split or "all", "files": files}


def _write_part(corpus: Path, part: Part, split: str | None, path: Path, fmt: str, to_record: Record) -> tuple[int, int]:
    instructions = set()
    with atomic_open(path) as handle:
        writer = JsonArrayWriter(handle) if fmt in ("llamafactory", "alpha-umi") else JsonlWriter(handle)
        for role in part.roles:
            for row in _rows(corpus / f"{ROLE_PATHS[role]}.parquet", split):
                instructions.add(row["instruction_id"])
                writer.write(to_record(row))
        if isinstance(writer, JsonArrayWriter):
            writer.close()
    return writer.rows, len(instructions)


def _rows(path: Path, split: str | None) -> Iterator[dict[str, Any]]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        if split is not None:
            batch = batch.filter(pc.equal(batch.column("split"), split))
        yield from batch.to_pylist()


def _dataset_info(variant: Variant) -> dict[str, Any]:
    """LLaMA-Factory's dataset registry: one alpaca-format dataset per exported file."""
    return {
        f"umi_{stage.name}_{part.name}": {
            "file_name": f"{stage.name}/{_file_name('llamafactory', part)}",
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
        for stage in variant.stages
        for part in stage.parts
    }


__all__ = ["FORMATS", "ExportError", "Record", "export_variant", "prompt_completion"]
