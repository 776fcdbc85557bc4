"""Chat exports (`export --format openai|trl-chat|llamafactory-sharegpt|hermes`): the one mapping
from trajectories to chat messages reads back to the same turns, every format holds every example
or a counted reject, and each file is what its consumer accepts (OpenAI's own types, `datasets`,
LLaMA-Factory's role rules, Hermes tags). Real data: the 15 ToolBench answer files in ../shared;
synthetic: umi's synthetic world (errors, give-ups)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main
from umi_data.exports.chat import ChatReject, call_id, observation_content, to_chat_messages
from umi_data.exports.chat_formats import LLAMAFACTORY_THOUGHT, hermes_record, openai_record, sharegpt_record, token_bound
from umi_data.core import (
    CallerTurn, ConclusionTurn, ObservationTurn, PlannerTurn, ToolSpec, Trajectory, UserTurn, make_instruction_id,
)
from umi_data.rendering.examples import ROLE_PATHS
from umi_data.corpus.rows import read_trajectories
from umi_data.sources.toolbench import caller_turn, parse_observation

REPO = Path(__file__).resolve().parents[1]
TOOLBENCH = REPO.parent / "shared" / "data" / "toolbench" / "answer"
FORMATS = ("openai", "trl-chat", "llamafactory-sharegpt", "hermes")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umi_data.synth.world import write_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic(root / "world", 30, seed=3)
    assert main(["build", "toolbench", str(root / "world" / "answer"), "--out", str(root / "corpus"), "--no-progress", "--workers", "1"]) == 0
    return root / "corpus"


@pytest.fixture(scope="module")
def toolbench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TOOLBENCH.is_dir():
        pytest.skip(f"needs the ToolBench answer files in {TOOLBENCH} (../shared is absent)")
    out = tmp_path_factory.mktemp("toolbench") / "corpus"
    assert main(["build", "toolbench", str(TOOLBENCH), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    return out


@pytest.fixture(params=["synthetic", "toolbench"])
def corpus(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(request.param)


def trajectories(corpus: Path) -> list[Trajectory]:
    return list(read_trajectories(str(corpus / "trajectories.parquet")))


def export(corpus: Path, out: Path, fmt: str, variant: str = "single", *extra: str) -> dict:
    assert main(["export", str(corpus), "--variant", variant, "--format", fmt, "--out", str(out), *extra]) == 0
    return json.loads((out / "export.json").read_text())


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the mapping reads back ------------------------------------------------------------------


def read_back(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    """The inverse the chat.py docstring states (a reference for importers): chat -> turns.
    Parallel calls (none in these corpora) would also need their results moved between calls."""
    names = {tool["function"]["name"] for tool in tools}
    text_only = lambda m: m["role"] == "assistant" and "tool_calls" not in m  # noqa: E731
    turns: list[Any] = []
    last = len(messages) - 1
    for index, message in enumerate(messages):
        if message["role"] == "user":
            turns.append(UserTurn(content=message["content"]))
        elif message["role"] == "tool":
            turns.append(read_observation(message["content"]))
        elif not text_only(message):
            for k, call in enumerate(message["tool_calls"]):
                turns.append(PlannerTurn(next="caller", **(thought_of(message) if k == 0 else {})))
                turns.append(caller_turn(call["function"]["name"], call["function"]["arguments"], names))
        elif index == last:
            if not text_only(messages[index - 1]):
                turns.append(PlannerTurn(next="conclusion"))
            turns.append(ConclusionTurn(answer=message["content"]))
        else:
            turns.append(PlannerTurn(thought=message["content"], next="conclusion" if index == last - 1 else None))
    return turns


def thought_of(message: dict[str, Any]) -> dict[str, Any]:
    if "content" not in message:
        return {"empty_thought": "absent"}
    content = message["content"]
    return {"thought": content} if content else {"empty_thought": "empty_string" if content == "" else "null"}


def read_observation(content: str) -> ObservationTurn:
    if content.startswith('{"error": '):
        return parse_observation(content)
    return ObservationTurn(response=content)


def normalised(trajectory: Trajectory) -> list[Any]:
    """The turns less what chat.py says no chat carries."""
    out = []
    for turn in trajectory.turns:
        if isinstance(turn, UserTurn):
            turn = turn.model_copy(update={"diversity_prompt": False})
        elif isinstance(turn, ConclusionTurn):
            turn = turn.model_copy(update={"raw_arguments": None})
        elif isinstance(turn, PlannerTurn) and turn.next != "caller":
            turn = turn.model_copy(update={"empty_thought": "null"})
        elif isinstance(turn, ObservationTurn) and turn.raw == turn.response and not turn.error:
            turn = turn.model_copy(update={"raw": None})
        out.append(turn)
    return out


def test_the_mapping_reads_back_to_the_same_turns(corpus: Path) -> None:
    checked = rejected = 0
    for trajectory in trajectories(corpus):
        try:
            example = to_chat_messages(trajectory)
        except ChatReject as reject:
            assert reject.reason == "gives_up" and trajectory.outcome == "give_up"
            rejected += 1
            continue
        assert example.tools == [{"type": "function", "function": t.model_dump()} for t in trajectory.tools]
        back = read_back(example.messages[1:], example.tools)
        assert back == normalised(trajectory), trajectory.id
        assert back[0].content == trajectory.instruction
        checked += 1
    assert checked and rejected  # both corpora hold answers and give-ups


def test_thought_and_call_share_one_assistant_message_and_results_link_by_id(corpus: Path) -> None:
    for trajectory in trajectories(corpus):
        if trajectory.outcome != "answer":
            continue
        messages = to_chat_messages(trajectory).messages
        calls = [c for m in messages for c in m.get("tool_calls", [])]
        callers = [t for t in trajectory.turns if isinstance(t, CallerTurn)]
        assert [c["function"]["arguments"] for c in calls] == [t.raw_arguments for t in callers]  # raw strings, verbatim
        assert [c["id"] for c in calls] == [call_id(k) for k in range(len(callers))]
        answered = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
        assert answered == [c["id"] for c in calls][: len(answered)]
        thoughts = [t.thought for t in trajectory.turns if isinstance(t, PlannerTurn) and t.next == "caller"]
        assert [m.get("content") or "" for m in messages if "tool_calls" in m] == thoughts


def test_the_two_real_thoughts_that_decide_nothing_stay_apart_from_the_answer(toolbench: Path) -> None:
    """ToolBench writes a thought without a call, then an empty-thought Finish: the chat keeps an
    empty assistant message between them, so the thought is not read back as the answer's."""
    found = 0
    for trajectory in trajectories(toolbench):
        turns = trajectory.turns
        if trajectory.outcome == "answer" and isinstance(turns[-3], PlannerTurn) and turns[-3].next is None:
            messages = to_chat_messages(trajectory).messages
            assert [m["content"] for m in messages[-3:]] == [turns[-3].thought, "", turns[-1].answer]
            found += 1
    assert found == 2


def test_observation_errors_travel_in_the_toolbench_envelope(synthetic: Path) -> None:
    errors = [t for tr in trajectories(synthetic) for t in tr.turns if isinstance(t, ObservationTurn) and t.error]
    assert errors
    for turn in errors:
        assert json.loads(observation_content(turn)) == {"error": turn.error, "response": turn.response}
        assert parse_observation(observation_content(turn)) == turn
    plain = ObservationTurn(response='{"error": "", "response": "x"}')  # reads like an envelope: wrapped once more
    assert read_observation(observation_content(plain)) == plain


def small_trajectory(**changes: Any) -> Trajectory:
    tools = changes.pop("tools", [ToolSpec(name="weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})])
    turns = changes.pop("turns", None) or [
        UserTurn(content="Weather in Paris and Rome?"),
        PlannerTurn(thought="I will look both up.", next="caller"), CallerTurn(name="weather", raw_arguments='{"city": "Paris"}', arguments={"city": "Paris"}),
        ObservationTurn(response="sunny"),
        PlannerTurn(next="caller"), CallerTurn(name="weather", raw_arguments='{"city": "Rome"}', arguments={"city": "Rome"}),
        ObservationTurn(response="rain"),
        PlannerTurn(thought="I have both.", next="conclusion"), ConclusionTurn(answer="Paris is sunny, Rome rainy."),
    ]
    fields = {"id": "t1", "source": "synthetic", "instruction": turns[0].content, "instruction_id": make_instruction_id(turns[0].content),
              "tools": tools, "turns": turns, "outcome": "answer", **changes}
    return Trajectory(**fields)


def test_parallel_calls_are_one_assistant_message_with_results_in_call_order() -> None:
    messages = to_chat_messages(small_trajectory(meta={"parallel_calls": [[2, 5]]})).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "assistant", "assistant"]
    assert [c["function"]["arguments"] for c in messages[2]["tool_calls"]] == ['{"city": "Paris"}', '{"city": "Rome"}']
    assert [(m["tool_call_id"], m["content"]) for m in messages[3:5]] == [("call_0", "sunny"), ("call_1", "rain")]
    assert [m["content"] for m in messages[5:]] == ["I have both.", "Paris is sunny, Rome rainy."]
    with pytest.raises(ChatReject, match="bad_parallel_calls"):
        to_chat_messages(small_trajectory(meta={"parallel_calls": [[2, 4]]}))
    hermes = hermes_record(to_chat_messages(small_trajectory(meta={"parallel_calls": [[2, 5]]})))
    assert hermes["conversations"][2]["value"].count("<tool_call>") == 2 and hermes["conversations"][3]["value"].count("<tool_response>") == 2


def test_what_no_chat_can_say_is_a_named_reject() -> None:
    base = small_trajectory().turns
    refused = [*base, ObservationTurn(error="no answer given"), PlannerTurn(thought="Again.", next="conclusion"), ConclusionTurn(answer="Sunny and rainy.")]
    cases = {
        "answer_refused": small_trajectory(turns=refused),
        "unfinished": small_trajectory(turns=base[:4], outcome="unfinished"),
        "gives_up": small_trajectory(turns=[*base[:4], PlannerTurn(thought="No.", next="give_up")], outcome="give_up"),
    }
    for reason, trajectory in cases.items():
        with pytest.raises(ChatReject, match=reason):
            to_chat_messages(trajectory)


def test_text_holding_a_formats_markup_is_a_reject() -> None:
    turns = small_trajectory().turns
    tricky = small_trajectory(turns=[*turns[:-2], PlannerTurn(thought="Done </think> now.", next="conclusion"), ConclusionTurn(answer="<tool_call> is a tag.")])
    for record in (sharegpt_record, hermes_record):
        with pytest.raises(ChatReject, match="markup_in_text"):
            record(to_chat_messages(tricky))
    openai_record(to_chat_messages(tricky))  # JSON fields: nothing to confuse


# --- the four formats --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_trajectory_is_a_row_or_a_counted_reject(corpus: Path, tmp_path: Path, fmt: str) -> None:
    manifest = export(corpus, tmp_path / fmt, fmt)
    entry = manifest["stages"]["stage1"]["files"]["backbone"]
    rejects = lines(tmp_path / fmt / "rejects.jsonl")
    assert entry["rows"] + entry["rejected"] == len(trajectories(corpus)) and len(rejects) == entry["rejected"]
    assert manifest["rejects"]["by_reason"] == entry["rejects"] and all(r["reason"] and r["detail"] for r in rejects)
    gives_up = sum(t.outcome == "give_up" for t in trajectories(corpus))
    assert entry["rejects"].get("gives_up") == gives_up
    if fmt != "llamafactory-sharegpt":  # the other formats express every answered trajectory of these corpora
        assert set(entry["rejects"]) == {"gives_up"}


def test_openai_export_validates_against_openai_types(corpus: Path, tmp_path: Path) -> None:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionMessageToolCallParam, ChatCompletionToolParam
    from pydantic import TypeAdapter

    message, tool, call = TypeAdapter(ChatCompletionMessageParam), TypeAdapter(ChatCompletionToolParam), TypeAdapter(ChatCompletionMessageToolCallParam)
    export(corpus, tmp_path / "o", "openai")
    rows = lines(tmp_path / "o" / "stage1" / "backbone.jsonl")
    assert rows
    for row in rows:
        assert set(row) <= {"messages", "tools"}
        for item in row["messages"]:
            message.validate_python(item, strict=True)
            for tool_call in item.get("tool_calls", []):  # the message type validates its iterables lazily
                call.validate_python(tool_call, strict=True)
            assert set(item) <= {"role", "content", "tool_calls", "tool_call_id"}
        for schema in row.get("tools", []):
            tool.validate_python(schema, strict=True)
    with pytest.raises(Exception):  # the check can fail: an object where OpenAI wants the argument string
        broken = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
        call.validate_python(broken, strict=True)


def test_openai_rejects_what_openai_refuses_with_a_counted_reason(tmp_path: Path) -> None:
    spaced = small_trajectory(tools=[ToolSpec(name="Market Trends API")], turns=[
        UserTurn(content="Trends?"), PlannerTurn(next="caller"), CallerTurn(name="Market Trends API", raw_arguments="{}", arguments={}),
        ObservationTurn(response="up"), PlannerTurn(next="conclusion"), ConclusionTurn(answer="Up."),
    ])
    with pytest.raises(ChatReject, match="name_not_allowed"):
        openai_record(to_chat_messages(spaced))
    with pytest.raises(ChatReject, match="too_long"):
        openai_record(to_chat_messages(small_trajectory()), max_tokens=100)


def test_openai_max_tokens_rejects_long_examples(synthetic: Path, tmp_path: Path) -> None:
    bounds = sorted(token_bound(to_chat_messages(t)) for t in trajectories(synthetic) if t.outcome == "answer")
    limit = bounds[len(bounds) // 2]
    manifest = export(synthetic, tmp_path / "o", "openai", "single", "--max-tokens", str(limit))
    entry = manifest["stages"]["stage1"]["files"]["backbone"]
    assert entry["rejects"]["too_long"] == sum(b > limit for b in bounds) and entry["rows"] == sum(b <= limit for b in bounds)
    assert manifest["max_tokens"] == limit
    assert all(r["reason"] != "too_long" or f"over the limit of {limit}" in r["detail"] for r in lines(tmp_path / "o" / "rejects.jsonl"))


def test_openai_file_limit_rejects_the_examples_past_it(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import umi_data.exports.chat_export as chat_export

    monkeypatch.setattr(chat_export, "OPENAI_MAX_FILE_BYTES", 20_000)
    manifest = export(synthetic, tmp_path / "o", "openai")
    entry = manifest["stages"]["stage1"]["files"]["backbone"]
    assert entry["rejects"]["file_too_large"] and entry["rows"] and entry["bytes"] <= 20_000
    assert entry["rows"] + entry["rejected"] == len(trajectories(synthetic))
    assert entry["note"].startswith("OpenAI needs at least 10 examples") if entry["rows"] < 10 else "note" not in entry


def test_trl_chat_export_is_a_datasets_directory_with_messages_and_tools(corpus: Path, tmp_path: Path) -> None:
    import datasets

    export(corpus, tmp_path / "t", "trl-chat")
    loaded = datasets.load_dataset(str(tmp_path / "t" / "stage1" / "backbone"), split="train")
    assert loaded.column_names == ["id", "messages", "tools"]
    answered = {t.id: t for t in trajectories(corpus) if t.outcome == "answer"}
    assert sorted(loaded["id"]) == sorted(answered)
    for row in loaded:
        expected = to_chat_messages(answered[row["id"]])
        assert row["tools"] == expected.tools
        for got, want in zip(row["messages"], expected.messages, strict=True):
            if "tool_calls" in want:  # arguments as objects, for chat templates
                assert [c["function"]["arguments"] for c in got["tool_calls"]] == [json.loads(c["function"]["arguments"]) for c in want["tool_calls"]]
            else:
                assert got == want


def sharegpt_call(value: str) -> Any:
    thought = re.match(re.escape(LLAMAFACTORY_THOUGHT[0]) + "(.*?)" + re.escape(LLAMAFACTORY_THOUGHT[1]), value, re.S)
    return json.loads(value[thought.end():] if thought else value)


def test_llamafactory_export_follows_its_role_rules_and_registers_every_file(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "l", "llamafactory-sharegpt", "reuse")
    info = json.loads((tmp_path / "l" / "dataset_info.json").read_text())
    assert sorted(info) == ["umi_stage1_backbone", "umi_stage2_caller", "umi_stage2_planner", "umi_stage2_summarizer"]
    for entry in info.values():
        assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations", "system": "system", "tools": "tools"}
        for row in json.loads((tmp_path / "l" / entry["file_name"]).read_text()):
            roles = [t["from"] for t in row["conversations"]]
            assert len(roles) % 2 == 0 and all(r in ("human", "observation") for r in roles[::2]) and all(r in ("gpt", "function_call") for r in roles[1::2])
            for turn in row["conversations"]:
                if turn["from"] == "function_call":
                    calls = sharegpt_call(turn["value"])
                    assert all(set(c) == {"name", "arguments"} and isinstance(c["arguments"], dict) for c in (calls if isinstance(calls, list) else [calls]))
            assert row["tools"] == "" or all("name" in t for t in json.loads(row["tools"]))
    planner = json.loads((tmp_path / "l" / "stage2" / "planner.json").read_text())
    targets = [r["target"] for r in pq.read_table(corpus / f"{ROLE_PATHS['planner']}.parquet").to_pylist()]
    assert [r["conversations"][1]["value"] for r in planner] == targets


def test_llamafactory_keeps_the_thought_before_a_call(synthetic: Path, tmp_path: Path) -> None:
    export(synthetic, tmp_path / "l", "llamafactory-sharegpt")
    rows = json.loads((tmp_path / "l" / "stage1" / "backbone.json").read_text())
    with_thought = [t["value"] for r in rows for t in r["conversations"] if t["from"] == "function_call" and t["value"].startswith("<think>")]
    assert with_thought and all(isinstance(sharegpt_call(v), dict) for v in with_thought)
    answers = {t.id: t.turns[-2:] for t in trajectories(synthetic) if t.outcome == "answer"}
    assert len(rows) == len(answers)  # a thought before the answer goes in the answer's thought block
    finals = sorted(r["conversations"][-1]["value"] for r in rows)
    assert finals == sorted(f"<think>\n{p.thought}\n</think>\n\n{c.answer}" for p, c in answers.values())


def test_llamafactory_rejects_what_it_would_skip_on_real_data(toolbench: Path, tmp_path: Path) -> None:
    manifest = export(toolbench, tmp_path / "l", "llamafactory-sharegpt")
    entry = manifest["stages"]["stage1"]["files"]["backbone"]
    # DFS diversity prompts (a user message right after a tool result): LLaMA-Factory skips such
    # examples with a warning; umi lists them. The answer with a thought (9 answers, 2 with one) is kept.
    assert entry["rejects"] == {"gives_up": 4, "role_order": 4} and entry["rows"] == 5
    reasons = [r["detail"] for r in lines(tmp_path / "l" / "rejects.jsonl") if r["reason"] == "role_order"]
    assert all(re.match(r"turn \d+ is human, LLaMA-Factory needs gpt or function_call there", r) for r in reasons)


def test_hermes_export_uses_its_tags(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "h", "hermes")
    rows = lines(tmp_path / "h" / "stage1" / "backbone.jsonl")
    answered = {t.id: t for t in trajectories(corpus) if t.outcome == "answer"}
    assert len(rows) == len(answered)
    for row in rows:
        conversation = row["conversations"]
        system = conversation[0]["value"]
        tools = json.loads(system[system.index("<tools>\n") + 8: system.index("\n</tools>")])
        assert tools == to_chat_messages(answered[row["id"]]).tools
        calls = [json.loads(b) for t in conversation if t["from"] == "gpt" for b in re.findall(r"<tool_call>\n(.*?)\n</tool_call>", t["value"], re.S)]
        callers = [t for t in answered[row["id"]].turns if isinstance(t, CallerTurn)]
        assert [(c["name"], c["arguments"]) for c in calls] == [(t.name, json.loads(t.raw_arguments)) for t in callers]
        results = [json.loads(b) for t in conversation if t["from"] == "tool" for b in re.findall(r"<tool_response>\n(.*?)\n</tool_response>", t["value"], re.S)]
        assert [r["name"] for r in results] == [t.name for t in callers][: len(results)]
        assert row["text"].startswith("<|im_start|>system\n") and row["text"].count("<|im_start|>") == len(conversation)


@pytest.mark.parametrize("fmt", FORMATS)
def test_role_variants_hold_exactly_each_roles_targets(synthetic: Path, tmp_path: Path, fmt: str) -> None:
    manifest = export(synthetic, tmp_path / fmt, fmt, "no-reuse")
    for role in ("planner", "caller", "summarizer"):
        expected = [r for r in pq.read_table(synthetic / f"{ROLE_PATHS[role]}.parquet").to_pylist() if r["split"] == "B"]
        entry = manifest["stages"]["stage2"]["files"][role]
        assert entry["rows"] == len(expected) and entry["rejected"] == 0
        assert [(i, t) for i, t in pairs(tmp_path / fmt / entry["path"], fmt)] == [(r["input"], r["target"]) for r in expected]
    split_a = {t.id for t in trajectories(synthetic) if _split(synthetic, t) == "A"}
    backbone = manifest["stages"]["stage1"]["files"]["backbone"]
    assert backbone["rows"] + backbone["rejected"] == len(split_a) and manifest["stages"]["stage1"]["split"] == "A"


def _split(corpus: Path, trajectory: Trajectory) -> str:
    from umi_data.rendering.examples import assign_split

    config = json.loads((corpus / "manifest.json").read_text())["config"]
    return assign_split(trajectory.instruction_id, config["split_seed"], config["split_ratio"])


def pairs(path: Path, fmt: str) -> list[tuple[str, str]]:
    """(user text, assistant text) of each two-message chat of a role file."""
    if fmt == "trl-chat":
        rows = [json.loads(m) for m in pq.read_table(path / "train.parquet").column("messages").to_pylist()]
        return [(m[0]["content"], m[1]["content"]) for m in rows]
    if fmt == "llamafactory-sharegpt":
        return [(r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in json.loads(path.read_text())]
    if fmt == "hermes":
        return [(r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in lines(path)]
    return [(r["messages"][0]["content"], r["messages"][1]["content"]) for r in lines(path)]


def test_chat_export_is_deterministic(synthetic: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        export(synthetic, tmp_path / name, "trl-chat", "reuse")
    files = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file() and p.name != "export.json"}  # noqa: E731
    assert files(tmp_path / "a") == files(tmp_path / "b")
