"""Labels, truncation, masking invariants (golden masks of real examples), collation, data selection.

The golden files under tests/golden/train_mask/ list the tokens of a few examples of the
built-in sample corpus with their label state, tokenized by the tiny tokenizer trained on that
corpus. After an intended change, regenerate them with
`UMI_UPDATE_GOLDEN=1 pytest tests/test_train_encode.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from umi_train.collate import PaddingCollator, make_collator
from umi_train.config import UsageError
from umi_train.data import held_out_instructions, select_examples, split_eval
from umi_train.encode import IGNORE_INDEX, EncodingError, check_labels, encode, encode_prompt, render_mask
from umi_train.testing import sample_corpus, single_thread, tiny_model

GOLDEN = Path(__file__).parent / "golden" / "train_mask"
#: (golden name, example id, compat, max_length)
GOLDEN_CASES = [
    ("summarizer_default", "toolbench-1b19492b136358f1/summarizer/0", None, 4096),
    ("summarizer_alpha_umi", "toolbench-1b19492b136358f1/summarizer/0", "alpha-umi", 4096),
    ("caller_truncated_left", "toolbench-3f9a1ef4827cbe09/caller/1", None, 48),
    ("backbone_give_up", "toolbench-5b61d672f71fa1f7/backbone/1", None, 4096),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    return sample_corpus(tmp_path_factory.getbasetemp() / "umi-train" / "corpus")


@pytest.fixture(scope="module")
def tokenizer(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model(tmp_path_factory.getbasetemp() / "umi-train" / "tiny", corpus))


@pytest.fixture(scope="module")
def examples(corpus: Path) -> dict[str, dict]:
    rows = select_examples(corpus, ("backbone", "planner", "caller", "summarizer"), None)
    return {row["example_id"]: row for row in rows}


@pytest.mark.parametrize("name, example_id, compat, max_length", GOLDEN_CASES)
def test_golden_masks(name, example_id, compat, max_length, examples, tokenizer) -> None:
    row = examples[example_id]
    encoded = encode(row["input"], row["target"], tokenizer, max_length, compat=compat, example_id=example_id)
    supervised = sum(label != IGNORE_INDEX for label in encoded["labels"])
    header = f"# {example_id} compat={compat} max_length={max_length}: {len(encoded['input_ids'])} tokens, {supervised} supervised\n"
    rendered = header + render_mask(encoded, tokenizer, prompt_head=12, prompt_tail=10)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UMI_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert rendered == path.read_text(), f"{path} differs; rerun with UMI_UPDATE_GOLDEN=1 if the change is intended"


def test_target_and_eos_supervised_input_masked(examples, tokenizer) -> None:
    row = examples["toolbench-3f9a1ef4827cbe09/caller/0"]
    encoded = encode(row["input"], row["target"], tokenizer, 4096, example_id=row["example_id"])
    prompt = encode_prompt(row["input"], tokenizer)
    assert encoded["input_ids"][: len(prompt)] == prompt and prompt[0] == tokenizer.bos_token_id
    assert set(encoded["labels"][: len(prompt)]) == {IGNORE_INDEX}
    target = encoded["labels"][len(prompt):]
    assert target == encoded["input_ids"][len(prompt):] and target[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(target, skip_special_tokens=True) == row["target"]


def test_alpha_umi_compat_prefix_and_literal_eos(examples, tokenizer) -> None:
    row = examples["toolbench-3f9a1ef4827cbe09/caller/0"]
    encoded = encode(row["input"], row["target"], tokenizer, 4096, compat="alpha-umi", example_id=row["example_id"])
    text = tokenizer.decode(encoded["input_ids"], skip_special_tokens=False)
    assert text.startswith("<s>system: You have assess") and text.endswith(row["target"] + "</s>")
    assert encoded["labels"][-1] == tokenizer.eos_token_id


def test_left_truncation_keeps_bos_and_whole_target(examples, tokenizer) -> None:
    row = examples["toolbench-3f9a1ef4827cbe09/backbone/2"]
    full = encode(row["input"], row["target"], tokenizer, 4096, example_id=row["example_id"])
    cut = encode(row["input"], row["target"], tokenizer, 64, example_id=row["example_id"])
    assert len(cut["input_ids"]) == 64 and cut["input_ids"][0] == tokenizer.bos_token_id
    assert cut["input_ids"][1:] == full["input_ids"][-63:]  # the start of the input is what goes
    assert cut["labels"][1:] == full["labels"][-63:]


def test_target_longer_than_max_length_raises_naming_example(examples, tokenizer) -> None:
    row = examples["toolbench-3f9a1ef4827cbe09/backbone/2"]
    with pytest.raises(EncodingError, match="toolbench-3f9a1ef4827cbe09/backbone/2: the target alone"):
        encode(row["input"], row["target"], tokenizer, 16, example_id=row["example_id"])


def test_compat_needs_a_tokenizer_reading_literal_eos(tokenizer) -> None:
    class NoLiteralEos:  # a tokenizer whose EOS is not spelled "</s>" (like Qwen's <|endoftext|>)
        bos_token_id, eos_token_id, eos_token = None, 99, "<|endoftext|>"

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(char) % 90 for char in text]}

    with pytest.raises(EncodingError, match="ex-1: compat alpha-umi appends the literal '</s>'"):
        encode("question", "answer", NoLiteralEos(), 64, compat="alpha-umi", example_id="ex-1")
    assert encode("question", "answer", NoLiteralEos(), 64, example_id="ex-1")["labels"][-1] == 99


@pytest.mark.parametrize(
    "encoded, message",
    [
        ({"input_ids": [1, 2, 3], "labels": [-100, 2]}, "3 input_ids but 2 labels"),
        ({"input_ids": [1, 2, 3], "labels": [-100, -100, -100]}, "no supervised token"),
        ({"input_ids": [1, 5, 3], "labels": [-100, 5, -100]}, "EOS token is not supervised"),
        ({"input_ids": [1, 5, 2], "labels": [-100, 6, 2]}, "differs from its input token"),
    ],
)
def test_masking_invariants_raise_with_example_id(encoded, message) -> None:
    with pytest.raises(EncodingError, match=f"ex-7: .*{message}"):
        check_labels(encoded, eos_token_id=2, example_id="ex-7")


def test_dynamic_padding_pads_to_longest_with_masked_labels() -> None:
    batch = PaddingCollator(pad_token_id=0)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "length": 3, "example_id": "a"},
        {"input_ids": [5, 8], "labels": [-100, 8], "length": 2, "example_id": "b"},
    ])
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, 8, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_max_length_collator_is_the_baseline(tokenizer) -> None:
    collator = make_collator(tokenizer, "max-length", 8)
    batch = collator([{"input_ids": [1, 5, 2], "labels": [-100, 5, 2]}])
    assert batch["input_ids"].shape == (1, 8) and batch["attention_mask"].sum() == 3
    assert batch["input_ids"][0, 3:].eq(tokenizer.pad_token_id).all()
    with pytest.raises(ValueError, match="longer than the padding length 2"):
        PaddingCollator(0, max_length=2)([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])


def test_eval_slice_is_by_instruction_and_deterministic(corpus) -> None:
    ids = [f"instruction-{n}" for n in range(20)]
    held = held_out_instructions(ids, 0.1)
    assert len(held) == 2 and held == held_out_instructions(list(reversed(ids)), 0.1)
    assert held_out_instructions(ids[:1], 0.5) == frozenset()  # one instruction: nothing to hold out
    assert len(held_out_instructions(ids[:2], 0.9)) == 1  # never all of them
    selection = split_eval(select_examples(corpus, ("planner",), None), 0.3)
    train_ids = {row["instruction_id"] for row in selection.train}
    assert selection.eval and not train_ids & {row["instruction_id"] for row in selection.eval}


def test_empty_selection_is_a_user_error(tmp_path, corpus) -> None:
    one_sided = sample_corpus(tmp_path / "all-a", split_ratio=1.0)
    counts = json.loads((one_sided / "manifest.json").read_text())["examples"]
    assert counts["summarizer"]["B"] == 0
    with pytest.raises(UsageError, match="no summarizer examples in split B"):
        select_examples(one_sided, ("summarizer",), "B")
    with pytest.raises(UsageError, match="no manifest.json"):
        select_examples(tmp_path, ("planner",), None)
