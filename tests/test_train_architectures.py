"""The architecture matrix: a tiny random-weight model (hidden 64, 2 layers, one shared
tokenizer) of each common causal-LM family through `glpft --variant reuse --max-steps 2`:
it trains, merges, every role generates, the merged backbone equals base + adapter, and LoRA
sits on both attention and MLP (or expert) weights: the targets come from the model, not a
table. GPT-2's 1,024 learned positions bound the default --max-length."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from train_fixtures import corpus, model  # noqa: F401 (fixtures)
from umi_train import encode_prompt, glpft, load_role
from umi_train.testing import FAST_OPTIONS, cli_args, tiny_model

ARCHITECTURES = ["llama", "qwen2", "qwen3", "qwen3_moe", "mistral", "mixtral", "gemma2", "gemma3_text", "phi3", "gpt2",
                 "gpt_neox", "opt", "olmo2", "falcon", "starcoder2"]
POSITIONS = {"gpt2": 1024}  # GPT-2's learned position table; the others keep the tiny default (4096)
ATTENTION = re.compile(r"attn|attention")
#: weights that no default target adapts: embeddings (tokens, learned positions) and the output head
NEVER_ADAPTED = re.compile(r"(embed_tokens|embed_positions|embed_in|wte|wpe|word_embeddings)\.weight$|^(lm_head|embed_out)\.weight$")


@pytest.fixture(scope="module")
def tokenizer_dir(model: Path) -> Path:
    """The shared tiny model's directory: every architecture here uses its tokenizer."""
    return model


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_glpft_reuse_on_each_architecture(architecture: str, corpus: Path, tokenizer_dir: Path, tmp_path: Path, capsys) -> None:
    import torch

    from umi_train.data import read_role_rows
    from umi_train.lora import load_base, load_with_adapter

    positions = POSITIONS.get(architecture, 4096)
    model = tiny_model(tmp_path / "model", corpus, architecture=architecture, tokenizer=tokenizer_dir, max_position_embeddings=positions)
    options = {**{k: v for k, v in FAST_OPTIONS.items() if k != "max_length"}, "max_steps": 2, "eval_fraction": 0}
    out = tmp_path / "reuse"
    args = ["--model", str(model), "--corpus", str(corpus), "--out", str(out), "--variant", "reuse", *cli_args(options)]
    assert glpft.main(args) == 0
    printed = capsys.readouterr().out
    backbone = json.loads((out / "stage1" / "backbone" / "run.json").read_text())
    assert backbone["training"]["steps"] == 2 and backbone["data"]["max_length"] == min(4096, positions)
    assert ("is more than the model's 1024 positions" in printed) == (architecture == "gpt2")
    assert backbone["training"]["padding"] == ("dynamic" if architecture == "opt" else "packed")

    lora = backbone["lora"]
    adapted = lora["modules"] + lora["parameters"]
    assert any(ATTENTION.search(name) for name in adapted), lora
    assert any(not ATTENTION.search(name) for name in lora["modules"] + [p for p in lora["parameters"] if "experts" in p]), lora
    assert all(NEVER_ADAPTED.search(name) for name in lora["not_adapted"]), lora  # every block weight carries LoRA
    assert f"LoRA r=8 dropout={lora['dropout']} on modules" in printed
    if architecture in ("mixtral", "qwen3_moe"):
        assert {"mlp.experts.gate_up_proj", "mlp.experts.down_proj"} <= set(lora["parameters"]) and lora["dropout"] == 0.0

    reference = load_with_adapter(model, out / "stage1" / "backbone" / "adapter").eval()
    merged = load_base(out / "stage1" / "merged").eval()
    input_ids = torch.randint(4, merged.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (merged(input_ids).logits - reference(input_ids).logits).abs().max().item()
        changed = (load_base(model).eval()(input_ids).logits - reference(input_ids).logits).abs().max().item()
    assert difference < 1e-5 and changed > 1e-4, (difference, changed)

    for role in ("backbone", "planner", "caller", "summarizer"):
        role_model, tokenizer = load_role(out, role)
        prompt = encode_prompt(read_role_rows(corpus, role)[0]["input"], tokenizer)[-200:]
        with torch.no_grad():
            output = role_model.generate(torch.tensor([prompt]), max_new_tokens=4, do_sample=False)
        assert output.shape[1] > len(prompt), role


@pytest.fixture(scope="module")
def tiny_mixtral(corpus: Path, tokenizer_dir: Path):
    from transformers import AutoTokenizer

    from umi_train.tiny import TinyConfig, build_model

    def build():
        return build_model(TinyConfig(corpus=corpus, out=corpus, architecture="mixtral"), AutoTokenizer.from_pretrained(tokenizer_dir))
    return build


def test_fused_experts_need_no_dropout_and_overrides_replace_the_default(tiny_mixtral, monkeypatch) -> None:
    from umi_train import lora
    from umi_train.config import TrainOptions, UsageError

    assert lora.fused_expert_parameters(tiny_mixtral()) == ("mlp.experts.down_proj", "mlp.experts.gate_up_proj")
    with pytest.raises(UsageError, match=r"--lora-dropout 0.1: peft adapts the fused expert weights of mixtral only without dropout"):
        lora.attach_lora(tiny_mixtral(), TrainOptions(lora_dropout=0.1))
    report = lora.lora_report(lora.attach_lora(tiny_mixtral(), TrainOptions(target_modules=("q_proj", "v_proj"))))
    assert report["modules"] == ["self_attn.q_proj", "self_attn.v_proj"] and report["parameters"] == [] and report["dropout"] == 0.05
    assert {"mlp.experts.gate_up_proj", "mlp.experts.down_proj", "self_attn.k_proj.weight"} <= set(report["not_adapted"])
    monkeypatch.setattr(lora, "peft_adapts_parameters", lambda: False)  # a peft before 0.17
    targets = lora.choose_targets(tiny_mixtral(), TrainOptions())
    assert targets.parameters == () and [name.split(" ")[0] for name in targets.left_out] == ["mlp.experts.down_proj", "mlp.experts.gate_up_proj"]
    assert "has no target_parameters" in targets.left_out[0]
