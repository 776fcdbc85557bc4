"""`python -m umi_train`: lists the training commands (each is its own module entry point)."""

from __future__ import annotations

import sys

COMMANDS = {
    "tiny": "build a tiny random-weight model (Llama, or --architecture) and a BPE tokenizer trained on a corpus",
    "import": "a GGUF checkpoint as a standard Hugging Face model directory",
    "sft": "train one LoRA adapter on one role corpus",
    "glpft": "train one of the alpha-UMi setups (stage 1 backbone -> merge -> stage 2 roles)",
    "serve": "launch lines (vLLM multi-LoRA, transformers serve) and merged role models for a run",
}


def main(argv: list[str] | None = None) -> int:
    print("usage: python -m umi_train.COMMAND [--help]\n\ncommands:")
    for name, description in COMMANDS.items():
        print(f"  {name:<6} {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
