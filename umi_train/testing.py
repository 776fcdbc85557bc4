"""Small real stand-ins for tests and demos: the built-in sample corpus and a tiny model on it.

Both builders are idempotent (a directory whose marker file exists is reused), so test modules
can share one copy under pytest's session temporary directory without a shared fixture, and
agent tests can get a trained tiny model the same way.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from umi_train.provenance import MODEL_FILE

#: training options that make the tiny model's loss fall within a few steps on 2 CPU cores
FAST_OPTIONS: dict[str, Any] = {
    "learning_rate": 2e-2, "lr_scheduler": "constant", "batch_size": 2, "max_length": 1024,
    "lora_dropout": 0.0, "quiet": True,
}


def single_thread() -> None:
    """One torch CPU thread: on a machine shared with other jobs, two OpenMP threads that
    busy-wait for each other make a tiny model's steps ~10x slower and erratic."""
    import torch

    torch.set_num_threads(1)


def sample_answer_dir() -> Path:
    """The ToolBench-format sample answer files shipped with umi_data."""
    return Path(str(resources.files("umi_data") / "samples" / "toolbench" / "answer"))


def sample_corpus(out: Path, **options: Any) -> Path:
    """The corpus built from the built-in sample (reused when its manifest exists)."""
    from umi_data.build import BuildConfig, build_corpus

    if not (out / "manifest.json").is_file():
        build_corpus(BuildConfig(source="toolbench", inputs=[str(sample_answer_dir())], **options), out, progress=False)
    return out


def tiny_model(out: Path, corpus: Path, **options: Any) -> Path:
    """A tiny model with a tokenizer trained on `corpus` (reused when its umi_model.json exists)."""
    from umi_train.tiny import TinyConfig, build_tiny

    if not (out / MODEL_FILE).is_file():
        build_tiny(TinyConfig(corpus=corpus, out=out, **options))
    return out


def cli_args(options: dict[str, Any]) -> list[str]:
    """`{"learning_rate": 0.02, "quiet": True}` -> `["--learning-rate", "0.02", "--quiet"]`."""
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, *map(str, value)]
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return args
