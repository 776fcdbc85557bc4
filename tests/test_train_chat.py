"""`--prompt-format chat`: role examples rendered through the model's chat template, the loss on
the assistant part only (labels from `umi_train.encode`), the format recorded in run.json and
used again at inference (local and served backends); `--report-to` and RUN/loss.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_fixtures import corpus, model  # noqa: F401 (fixtures)
from umi_data.rendering.examples import EXAMPLE_ROLES
from umi_train import sft
from umi_train.chat import chat_prompt, compact_tool_docs, split_tools, user_content
from umi_train.data import read_role_rows
from umi_train.encode import IGNORE_INDEX, EncodingError, encode, encode_prompt
from umi_train.testing import FAST_OPTIONS, cli_args

TOOLS_TEMPLATE = ("{% if tools %}<s>tools\n{{ tools | tojson }}</s>\n{% endif %}"
                  "{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n{% endfor %}"
                  "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tokenizer(model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def sft_args(model: Path, corpus: Path, out: Path, **options) -> list[str]:
    return ["--model", str(model), "--corpus", str(corpus), "--out", str(out), *cli_args({**FAST_OPTIONS, **options})]


@pytest.mark.parametrize("role", EXAMPLE_ROLES)
def test_the_loss_covers_the_assistant_turn_of_the_chat_rendering_only(tokenizer, corpus, role) -> None:
    row = read_role_rows(corpus, role)[0]
    encoded = encode(row["input"], row["target"], tokenizer, 4096, prompt_format="chat", example_id=row["example_id"])
    messages = [{"role": "user", "content": user_content(row["input"])}, {"role": "assistant", "content": row["target"]}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    # the ids are the template's rendering, up to and including the EOS that ends the assistant turn
    text = tokenizer.decode(encoded["input_ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert rendered.startswith(text) and text.endswith(row["target"] + tokenizer.eos_token)
    supervised = [token for token, label in zip(encoded["input_ids"], encoded["labels"]) if label != IGNORE_INDEX]
    assert supervised == tokenizer(row["target"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt = encode_prompt(row["input"], tokenizer, prompt_format="chat")
    assert encoded["input_ids"][: len(prompt)] == prompt and all(label == IGNORE_INDEX for label in encoded["labels"][: len(prompt)])
    assert len(prompt) + len(supervised) == len(encoded["input_ids"])
    assert not user_content(row["input"]).endswith(("assistant: ", "caller: ", "conclusion: "))  # the header replaces the tag


def test_a_long_chat_prompt_loses_the_start_of_the_user_message_not_the_template(tokenizer, corpus) -> None:
    row = read_role_rows(corpus, "caller")[0]
    whole = encode(row["input"], row["target"], tokenizer, 4096, prompt_format="chat")
    cut = encode(row["input"], row["target"], tokenizer, 150, prompt_format="chat")
    assert whole["truncated"] == 0 and cut["truncated"] > 0 and len(cut["input_ids"]) <= 150
    head = tokenizer("<s>user\n", add_special_tokens=False)["input_ids"]
    assert cut["input_ids"][: len(head)] == head  # the template's own tokens kept
    assert [t for t in cut["labels"] if t != IGNORE_INDEX] == [t for t in whole["labels"] if t != IGNORE_INDEX]


def test_a_template_that_takes_tools_gets_them_as_tools(tokenizer, corpus) -> None:
    row = read_role_rows(corpus, "planner")[0]
    content, tools = split_tools(user_content(row["input"]))
    assert tools and all(tool["type"] == "function" and tool["function"]["name"] for tool in tools)
    assert len(content) < len(user_content(row["input"])) and '"Name"' not in content
    tokenizer.chat_template, saved = TOOLS_TEMPLATE, tokenizer.chat_template
    try:
        text = chat_prompt(user_content(row["input"]), tokenizer)
        assert text.startswith("<s>tools\n[") and tools[0]["function"]["name"] in text.split("</s>")[0]
        assert '"Name"' not in text.split("</s>", 1)[1]  # the doc lines left the message
    finally:
        tokenizer.chat_template = saved


def test_a_tokenizer_without_a_usable_chat_template_is_one_line(tokenizer, model, corpus, tmp_path, capsys) -> None:
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        with pytest.raises(EncodingError, match="has no chat template"):
            encode("question", "answer", tokenizer, 64, prompt_format="chat", example_id="ex-1")
        tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"  # no EOS after the answer
        with pytest.raises(EncodingError, match="not the EOS token"):
            encode("question", "answer", tokenizer, 64, prompt_format="chat", example_id="ex-1")
    finally:
        tokenizer.chat_template = saved
    with pytest.raises(ValueError, match="does not combine"):
        encode("question", "answer", tokenizer, 64, compat="alpha-umi", prompt_format="chat")
    with pytest.raises(SystemExit) as exited:  # a usage error of the command line (argparse's exit 2)
        sft.main(sft_args(model, corpus, tmp_path / "r", role="planner", max_steps=1, compat="alpha-umi", prompt_format="chat"))
    assert exited.value.code == 2
    assert "does not combine with --prompt-format chat" in capsys.readouterr().err


def test_compact_tool_docs_keep_every_tool_and_parameter_in_fewer_tokens(tokenizer, corpus) -> None:
    import json as jsonlib

    from umi_train.chat import DOC_END, DOC_HEADER, compact_tool_docs

    row = read_role_rows(corpus, "caller")[0]
    compact = compact_tool_docs(row["input"])
    block = row["input"][row["input"].index(DOC_HEADER) + len(DOC_HEADER):row["input"].index(DOC_END)]
    for doc in (jsonlib.loads(line) for line in block.splitlines() if line.strip()):
        assert f"- {doc['Name']}: " in compact
        assert all(f"    {arg} (" in compact for arg in doc["input"])
    assert compact.endswith(row["input"][row["input"].index(DOC_END):])  # history and instructions untouched
    full = encode(row["input"], row["target"], tokenizer, 4096)
    short = encode(row["input"], row["target"], tokenizer, 4096, tool_docs="compact")
    assert len(short["input_ids"]) < len(full["input_ids"])
    assert [t for t in short["labels"] if t != IGNORE_INDEX] == [t for t in full["labels"] if t != IGNORE_INDEX]
    assert compact_tool_docs("no tools here") == "no tools here"


def test_a_run_trained_with_chat_is_read_back_with_chat(model, corpus, tmp_path) -> None:
    import torch

    from umi_agent.backends import PromptFormat, TransformersModel
    from umi_agent.served import prompt_format

    out = tmp_path / "chat-run"
    assert sft.main(sft_args(model, corpus, out, role="caller", max_steps=2, save_steps=2, prompt_format="chat", tool_docs="compact")) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["prompt_format"] == "chat" and record["config"]["tool_docs"] == "compact"
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    local = TransformersModel.from_run(out, "caller", max_new_tokens=6)
    assert local.format.prompt_format == "chat" and local.format.tool_docs == "compact"
    prompt = read_role_rows(corpus, "caller")[0]["input"]
    ids = encode_prompt(prompt, local.tokenizer, prompt_format="chat", tool_docs="compact")
    assert local.encode(prompt) == ids
    with torch.no_grad():
        expected = local.model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, pad_token_id=local._pad_id)
    assert local.generate(prompt) == local.decode(expected[0, len(ids):].tolist())
    card = tmp_path / "served-tokenizer"  # what `umi_train.serve` writes for a served chat run
    local.tokenizer.save_pretrained(card)
    (card / "umi_model.json").write_text(json.dumps({"compat": None, "prompt_format": "chat", "tool_docs": "compact"}))
    served = prompt_format(card)
    assert served.prompt_format == "chat" and served.text(prompt, 6) == chat_prompt(user_content(compact_tool_docs(prompt)), local.tokenizer)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        PromptFormat(prompt_format="chat").text(prompt, 6)


def test_report_to_passes_through_to_transformers(model, corpus, tmp_path, capsys) -> None:
    from transformers.integrations import is_tensorboard_available

    args = sft_args(model, corpus, tmp_path / "tb", role="planner", max_steps=1, report_to="tensorboard")
    if is_tensorboard_available():
        assert sft.main(args) == 0
        assert list((tmp_path / "tb" / "checkpoints").glob("runs/*/events.out.tfevents.*"))
    else:  # the integration exists but its package does not: one line naming the flag, nothing trained
        assert sft.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("umi-train sft: error: --report-to tensorboard:") and "tensorboard" in err[-1]
    assert sft.main(sft_args(model, corpus, tmp_path / "bad", role="planner", max_steps=1, report_to="no-such-logger")) == 2
    assert "--report-to no-such-logger" in capsys.readouterr().err
