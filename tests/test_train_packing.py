"""Padding-free packing: each example's loss in a packed row is its loss alone (an unpadded
batch of one), whatever the architecture's positions (rotary, learned) or MLP (dense, experts),
with attention computed per example; a model whose attention mixes packed examples is detected
and padded instead; and training packed gives the loss curve of training padded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_train import attention
from umi_train.collate import PackingCollator, PaddingCollator, keeps_packed_examples_apart
from umi_train.encode import IGNORE_INDEX, encode
from train_fixtures import corpus, model  # noqa: F401 (fixtures)
from umi_train.testing import FAST_OPTIONS, cli_args, tiny_model

SPANS = attention.example_spans


@pytest.fixture(scope="module")
def examples(corpus: Path, model: Path) -> list[dict]:
    from transformers import AutoTokenizer

    from umi_train.data import select_examples

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = select_examples(corpus, ("caller", "summarizer", "planner"), None)[:5]
    return [encode(row["input"], row["target"], tokenizer, 1024, example_id=row["example_id"]) for row in rows]


def per_example_losses(logits, labels, starts: list[int], sizes: list[int]) -> list[float]:
    """Mean next-token loss of each example's supervised tokens, read out of one row."""
    import torch.nn.functional as F

    losses = []
    for start, size in zip(starts, sizes):
        shifted = labels[start + 1:start + size]
        token_losses = F.cross_entropy(logits[start:start + size - 1].float(), shifted.clamp(min=0), reduction="none")
        losses.append(token_losses[shifted != IGNORE_INDEX].mean().item())
    return losses


@pytest.mark.parametrize("architecture", ["llama", "gpt2", "qwen3_moe"])
def test_packed_loss_per_example_equals_unpadded_single_example(architecture, corpus, model, examples, tmp_path, monkeypatch) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    directory = model if architecture == "llama" else tiny_model(tmp_path / architecture, corpus, architecture=architecture)
    network = AutoModelForCausalLM.from_pretrained(directory).eval()
    sizes = [len(example["input_ids"]) for example in examples]
    starts = [sum(sizes[:index]) for index in range(len(sizes))]
    spans = []
    monkeypatch.setattr(attention, "example_spans", lambda mask, length: spans.append(found := SPANS(mask, length)) or found)
    assert attention.enable_packing(network) and network.config._attn_implementation == "umi_packed_sdpa"
    packed, padded = PackingCollator()(examples), PaddingCollator(pad_token_id=0)(examples)
    assert packed["input_ids"].shape == (1, sum(sizes)) and padded["input_ids"].numel() > sum(sizes)  # packing has no padding
    with torch.no_grad():
        packed_logits = network(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
        alone = [network(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]])).loss.item()
                 for example in examples]
        batch_loss = network(**packed, use_cache=False).loss.item()
    assert per_example_losses(packed_logits, packed["labels"][0], starts, sizes) == pytest.approx(alone, abs=1e-5)
    assert [start for start, _ in spans[0]] == [0, 7, 12]  # the check of enable_packing
    assert [[start for start, _ in found] for found in spans if found and len(found) == len(starts)] == [starts] * 2 * network.config.num_hidden_layers
    # the two packed forwards ran attention per example in every layer, not over the whole row
    supervised = [sum(label != IGNORE_INDEX for label in example["labels"][1:]) for example in examples]
    assert batch_loss == pytest.approx(sum(n * loss for n, loss in zip(supervised, alone)) / sum(supervised), abs=1e-5)


def test_attention_that_mixes_packed_examples_is_detected(corpus, tmp_path) -> None:
    """OPT (transformers 5) embeds the position ids but builds its causal mask without them:
    packed examples would see each other. Llama keeps them apart."""
    from transformers import AutoModelForCausalLM

    opt = AutoModelForCausalLM.from_pretrained(tiny_model(tmp_path / "opt", corpus, architecture="opt"))
    assert not keeps_packed_examples_apart(opt)
    assert not attention.enable_packing(opt) and opt.config._attn_implementation == "sdpa"  # left as it was
    llama = AutoModelForCausalLM.from_pretrained(tiny_model(tmp_path / "llama", corpus), attn_implementation="eager")
    assert keeps_packed_examples_apart(llama)


def test_training_packed_gives_the_loss_curve_of_training_padded(model, corpus, tmp_path, capsys) -> None:
    from umi_train import sft

    histories = {}
    for padding in ("packed", "dynamic"):
        out = tmp_path / padding
        options = {**FAST_OPTIONS, "padding": padding, "batch_size": 4, "max_steps": 4, "eval_fraction": 0.3}
        assert sft.main(["--model", str(model), "--corpus", str(corpus), "--role", "backbone", "--out", str(out), *cli_args(options)]) == 0
        record = json.loads((out / "run.json").read_text())
        assert record["training"]["padding"] == padding
        histories[padding] = record["training"]
    packed, dynamic = histories["packed"], histories["dynamic"]
    assert [e["loss"] for e in packed["loss_history"]] == pytest.approx([e["loss"] for e in dynamic["loss_history"]], abs=1e-4)
    assert packed["final_eval_loss"] == pytest.approx(dynamic["final_eval_loss"], abs=1e-4)
    assert packed["tokens_seen"] == dynamic["tokens_seen"] > 0
    assert "packed batches" in capsys.readouterr().out
