"""`python -m umi_train.export`: a variant's examples as exactly the token ids umi trains on.

Same layout as `python -m umi_data export` (`OUT/stage1/`, `OUT/stage2/`, `OUT/export.json`
last), one JSON line per example: `{"input_ids": [...], "completion_mask": [...]}`, where the ids
are `umi_train.encode`'s for the given tokenizer (BOS if the tokenizer uses one, the input
truncated from the left to fit `--max-length`, the target, EOS) and the mask is 1 exactly where
umi computes the loss. TRL's SFTTrainer takes such a pre-tokenized dataset as is:

    SFTTrainer(model, args=SFTConfig(completion_only_loss=True, max_length=None), train_dataset=...)

(`completion_only_loss=True`: TRL only reads `completion_mask` when told to; `max_length=None`:
its default 1024 would cut the ends of long examples, umi already fit them to `--max-length`.)
Text exports cannot promise this: a trainer that tokenizes prompt + completion in one piece may
merge tokens across the boundary, where umi tokenizes input and target separately.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from umi_data.rendering.variants import VARIANTS
from umi_train.config import parse_config, run_cli

PROG = "umi-train export"
FORMAT = "umi-tokens"


class ExportConfig(BaseModel):
    """`python -m umi_train.export`: one variant of a corpus as umi's token ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Path = Field(description="model (or tokenizer) directory whose tokenizer encodes the examples")
    gguf_file: str | None = Field(default=None, description="read the tokenizer from this GGUF file inside --model")
    corpus: Path = Field(description="corpus directory written by `umi-data build`")
    variant: Literal[tuple(VARIANTS)] = Field(description="which of the paper's setups (see umi_data.rendering.variants)")  # type: ignore[valid-type]
    out: Path = Field(description="directory to write (new, empty, or a previous export)")
    max_length: int = Field(default=4096, ge=8, description="longest sequence in tokens, as in training (inputs are truncated from the left)")
    compat: Literal["alpha-umi"] | None = Field(default=None, description="alpha-umi: the official recipe ('system: ' + input, target + literal '</s>')")
    prompt_format: Literal["alpha-umi", "chat"] = Field(default="alpha-umi", description="alpha-umi: raw role prompts; chat: through the tokenizer's chat template, as `sft --prompt-format chat` trains")
    tool_docs: Literal["full", "compact"] = Field(default="full", description="full or compact tool documentation, as `sft --tool-docs`")


def load_tokenizer(model: Path, gguf_file: str | None = None) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model, **({"gguf_file": gguf_file} if gguf_file else {}))


def token_record(tokenizer: Any, max_length: int, compat: str | None, prompt_format: str = "alpha-umi", tool_docs: str = "full") -> Any:
    """The export's record function: an example row -> its `input_ids` and `completion_mask`."""
    from umi_train.encode import IGNORE_INDEX, encode

    def record(row: dict[str, Any]) -> dict[str, list[int]]:
        encoded = encode(row["input"], row["target"], tokenizer, max_length, compat=compat, prompt_format=prompt_format,  # type: ignore[arg-type]
                         tool_docs=tool_docs, example_id=row["example_id"])
        return {"input_ids": encoded["input_ids"], "completion_mask": [int(label != IGNORE_INDEX) for label in encoded["labels"]]}

    return record


def export_tokens(config: ExportConfig) -> dict[str, Any]:
    """Write the export `config` describes; its manifest."""
    from umi_data.exports.export import export_variant

    if not config.model.is_dir():
        raise FileNotFoundError(f"--model {config.model}: no such directory")
    tokenizer = load_tokenizer(config.model, config.gguf_file)
    details = {"tokenizer": {"model": str(config.model), "gguf_file": config.gguf_file, "class": type(tokenizer).__name__,
                             "vocab_size": len(tokenizer)}, "max_length": config.max_length, "compat": config.compat,
               "prompt_format": config.prompt_format, "tool_docs": config.tool_docs}
    record = token_record(tokenizer, config.max_length, config.compat, config.prompt_format, config.tool_docs)
    return export_variant(config.corpus, config.variant, config.out, FORMAT, record=record, details=details)


def main(argv: list[str] | None = None) -> int:
    description = "Write a variant's examples as exactly the token ids umi trains on.\n\n" + __doc__.split("\n\n", 1)[1]
    config = parse_config(ExportConfig, argv, PROG, description)
    if config.compat is not None and config.prompt_format == "chat":
        from umi_data.plumbing.cli import fail

        return fail(PROG, ValueError("--compat alpha-umi is the official raw-text recipe; it does not combine with --prompt-format chat"))

    def command() -> int:
        from umi_data.corpus.layout import CorpusNotFoundError
        from umi_data.exports.export import ExportError

        try:
            manifest = export_tokens(config)
        except (ExportError, CorpusNotFoundError) as exc:
            from umi_data.plumbing.cli import fail

            return fail(PROG, exc)
        for stage, entry in manifest["stages"].items():
            print(f"{stage}: " + ", ".join(f"{f['path']} ({f['rows']} examples)" for f in entry["files"].values()))
        print(f"variant {manifest['variant']} as {FORMAT} (max length {config.max_length}) -> {config.out}")
        return 0

    return run_cli(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
