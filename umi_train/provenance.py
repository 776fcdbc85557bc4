"""What a run directory records about where it came from, and reading it back.

Every run directory carries its resolved config, the sha256 of the corpus manifest it read,
the identity of the base model, and the versions of the libraries. A model directory that umi
wrote (the tiny model, a merged stage-1 backbone) carries `umi_model.json`, its own provenance,
so a run started from it records where that model came from (nanochat-style checkpoint
metadata): stage 2 reads stage 1's provenance from disk, not from memory.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from umi_data.plumbing.write import sha256_file, write_json

RUN_FILE = "run.json"
MODEL_FILE = "umi_model.json"
_PACKAGES = ("umi", "torch", "transformers", "peft", "accelerate", "datasets", "tokenizers")


def versions() -> dict[str, str | None]:
    """Installed versions of umi and the libraries training depends on."""
    found: dict[str, str | None] = {}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def model_identity(model: Path) -> dict[str, Any]:
    """Path, config hash and (for models umi wrote) their own provenance."""
    config = model / "config.json"
    if not config.is_file():
        from umi_train.config import UsageError

        raise UsageError(f"--model {model}: no config.json; expected a local Hugging Face model directory")
    return {
        "path": str(model.resolve()),
        "config_sha256": sha256_file(config),
        "umi_model": read_json(model / MODEL_FILE),
    }


def corpus_identity(corpus: Path) -> dict[str, Any]:
    manifest = corpus / "manifest.json"
    return {"path": str(corpus.resolve()), "manifest_sha256": sha256_file(manifest)}


def write_model_card(model_dir: Path, provenance: dict[str, Any]) -> None:
    """`umi_model.json`, written last into a model directory umi produced."""
    write_json(model_dir / MODEL_FILE, {**provenance, "versions": versions()})


def write_run(run_dir: Path, record: dict[str, Any]) -> None:
    """`run.json`, the completion marker of a run directory: written last, atomically."""
    write_json(run_dir / RUN_FILE, record)


def tensors_sha256(state: dict[str, Any]) -> str:
    """A digest of named tensors (names sorted): equal weights give equal digests."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode() + b"\x00" + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
