"""`python -m umi_train COMMAND ...` (console script `umi-train`): the training commands; each is
also its own module entry point, `python -m umi_train.COMMAND`."""

from __future__ import annotations

import sys

from umi_data.plumbing.cli import dispatch

COMMANDS = {
    "tiny": "build a tiny random-weight model (Llama, or --architecture) and a BPE tokenizer trained on a corpus",
    "import": "a GGUF checkpoint as a standard Hugging Face model directory",
    "sft": "train one LoRA adapter on one role corpus",
    "glpft": "train one of the alpha-UMi setups (stage 1 backbone -> merge -> stage 2 roles)",
    "serve": "launch lines (vLLM multi-LoRA, transformers serve) and merged role models for a run",
    "export": "write a variant's examples as umi's own token ids (input_ids + completion_mask) for TRL",
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("umi_train", "umi-train", "Train LoRA adapters and the alpha-UMi setups on umi corpora.", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
