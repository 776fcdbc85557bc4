"""`umi_agent.passrate convert` against StableToolBench's own outputs: the data_example answer
files convert to exactly its `model_predictions_converted`; invalid runs (a random CoT try, a
random root-to-leaf walk of the DFS tree) follow its procedure and, with the official file order,
its random numbers (checked against the official script when STABLETOOLBENCH_DIR names a
checkout of StableToolBench; it is run from there, never shipped)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from umi_agent.passrate.__main__ import main
from umi_agent.passrate.convert import convert_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "stabletoolbench" / "data_example"
METHODS = {"cot": "CoT@1", "dfs": "DFS_woFilter_w2"}
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"needs ../shared ({EXAMPLE} is absent)")
OFFICIAL = os.environ.get("STABLETOOLBENCH_DIR")


def answer_dir(kind: str) -> Path:
    return EXAMPLE / "answer" / f"virtual_chatgpt_{kind}" / "G1_instruction"


def official_converted(kind: str) -> dict:
    return json.loads((EXAMPLE / "model_predictions_converted" / f"virtual_chatgpt_{kind}" / "G1_instruction.json").read_text())


@needs_example
@pytest.mark.parametrize("kind", ["cot", "dfs"])
def test_converted_answers_equal_stabletoolbench(kind: str, tmp_path: Path) -> None:
    """The CLI's file is JSON-equal to the official converted predictions (588 CoT is an invalid
    run: its one try, through the random pick)."""
    out = tmp_path / "converted.json"
    assert main(["convert", str(answer_dir(kind)), "--method", METHODS[kind], "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text()) == official_converted(kind)
    assert convert_dir(answer_dir(kind), METHODS[kind], order="listdir").dump() == official_converted(kind)


def invalid_set(root: Path) -> Path:
    """The example files plus invalid ones made from them: DFS trees (branching, with an extra
    Action Input and a bare Action added) and a CoT run with three tries."""
    out = root / "answers"
    out.mkdir()
    for kind, method in METHODS.items():
        for path in answer_dir(kind).glob("*.json"):
            (out / path.name).write_bytes(path.read_bytes())
    for qid in ("588", "608", "1073"):
        data = json.loads((answer_dir("dfs") / f"{qid}_DFS_woFilter_w2.json").read_text())
        data["answer_generation"]["valid_data"] = False
        top = data["tree"]["tree"]["children"]
        extra = copy.deepcopy(top[0])
        extra["node_type"], extra["observation"] = "Action Input", "{}"
        bare = {**copy.deepcopy(top[0]), "children": []}
        top += [extra, bare, copy.deepcopy(top[0])]
        (out / f"9{qid}_DFS_woFilter_w2.json").write_text(json.dumps(data))
    cot = json.loads((answer_dir("cot") / "588_CoT@1.json").read_text())
    cot["trys"] += [json.loads((answer_dir("cot") / f"{q}_CoT@1.json").read_text())["trys"][0] for q in ("1073", "608")]
    (out / "9588_CoT@1.json").write_text(json.dumps(cot))
    (out / "91073_CoT@1.json").write_text(json.dumps(tool_calls_variant(json.loads((answer_dir("cot") / "1073_CoT@1.json").read_text()))))
    return out


def tool_calls_variant(data: dict) -> dict:
    """The run in the new OpenAI shape: `tool_calls` + `tool` replies, the two calls made in
    parallel, one more call that never got a reply, then Finish before a call it cuts off."""
    old = data["answer_generation"]["train_messages"][-1]
    calls = [m["function_call"] for m in old if "function_call" in m]
    replies = [m["content"] for m in old if m["role"] == "function"]
    tool = [{"id": f"c{i}", "type": "function", "function": c} for i, c in enumerate(calls)]
    chain = old[:2] + [{"role": "assistant", "content": None, "tool_calls": tool[:2] + [{**tool[0], "id": "lost"}]},
                       *({"role": "tool", "tool_call_id": f"c{i}", "name": calls[i]["name"], "content": replies[i]} for i in (1, 0)),
                       {"role": "assistant", "content": "thinking", "tool_calls": None},
                       {"role": "assistant", "content": None, "tool_calls": [tool[2], tool[0]]}]
    data["answer_generation"]["train_messages"].append(chain)
    return data


@needs_example
def test_invalid_runs_follow_the_official_procedure(tmp_path: Path) -> None:
    """Each walk is a root-to-leaf path of the tree, reruns are identical, and a different file
    order moves only the random picks."""
    answers = invalid_set(tmp_path)
    first, again = (convert_dir(answers, "DFS", order="sorted") for _ in range(2))
    assert first == again and not first.rejects and len(first.answers) == 6
    parallel = convert_dir(answers, "CoT").answers["91073"].answer
    names = [call["name"] for call in tool_names_in(parallel.answer_details)]
    assert names == [*names[:2], "Finish"] and parallel.total_steps == 6  # system, user, 2 calls, thought, Finish
    # `function_call: null` beside `tool_calls` (an OpenAI message dump) is no call: the same answer
    data = tool_calls_variant(json.loads((answer_dir("cot") / "1073_CoT@1.json").read_text()))
    data["answer_generation"]["train_messages"][-1][-1]["function_call"] = None
    (answers / "91073_CoT@1.json").write_text(json.dumps(data))
    assert convert_dir(answers, "CoT").answers["91073"].answer == parallel
    for qid, answer in first.answers.items():
        node, steps = answer.answer.answer_details[0], 0
        assert [node["role"], node["next"][0]["role"]] == ["system", "user"]
        while node["next"]:
            node, steps = node["next"][0], steps + 1
            assert len(node["next"]) <= 1
        assert answer.answer.total_steps == steps + 1
        if qid.startswith("9"):  # the walk ended at a leaf: a tool, an extra Action Input or a bare Action
            assert node["role"] in ("tool", "assistant", "Action Input", "Action")
    cot = convert_dir(answers, "CoT", order="sorted")
    assert set(cot.answers) == {"588", "608", "1073", "9588", "91073"} and cot.answers["9588"].answer.final_answer == ""


@needs_example
@pytest.mark.skipif(not OFFICIAL, reason="set STABLETOOLBENCH_DIR to a StableToolBench checkout to compare with its converter")
@pytest.mark.parametrize("method", ["DFS_woFilter_w2", "CoT@1", "DFS", "CoT"])
def test_invalid_runs_equal_the_official_script(method: str, tmp_path: Path) -> None:
    """With the official order (os.listdir), invalid runs included, the very JSON of
    StableToolBench's convert_to_answer_format.py (its random picks reproduced)."""
    answers, out = invalid_set(tmp_path), tmp_path / "official.json"
    tooleval = Path(OFFICIAL) / "toolbench" / "tooleval"
    subprocess.run([sys.executable, "convert_to_answer_format.py", "--answer_dir", str(answers), "--method", method,
                    "--output", str(out)], cwd=tooleval, check=True, capture_output=True)
    assert convert_dir(answers, method, order="listdir").dump() == json.loads(out.read_text())


def tool_names_in(details: list) -> list[dict]:
    node, found = details[0], []
    while node["next"]:
        node = node["next"][0]
        if node["role"] == "tool":
            found.append(node["message"])
    return found


TOOLBENCH = EXAMPLE.parents[1] / "toolbench" / "answer"


@pytest.mark.skipif(not TOOLBENCH.is_dir(), reason=f"needs ../shared ({TOOLBENCH} is absent)")
@pytest.mark.parametrize("group", ["G1_answer", "G2_answer", "G3_answer"])
def test_toolbench_answer_files_convert(group: str, tmp_path: Path) -> None:
    """ToolBench's own DFS answer files (two of them invalid runs): all converted, none rejected,
    and equal to the official script's output when it is at hand."""
    conversion = convert_dir(TOOLBENCH / group, "DFS", order="listdir")
    assert len(conversion.answers) == 5 and not conversion.rejects
    if OFFICIAL:
        out = tmp_path / "official.json"
        subprocess.run([sys.executable, "convert_to_answer_format.py", "--answer_dir", str(TOOLBENCH / group), "--method", "DFS",
                        "--output", str(out)], cwd=Path(OFFICIAL) / "toolbench" / "tooleval", check=True, capture_output=True)
        assert conversion.dump() == json.loads(out.read_text())


@needs_example
def test_bad_files_are_counted_rejects(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    answers = invalid_set(tmp_path)
    (answers / "1_CoT@1.json").write_text("{not json")
    (answers / "2_CoT@1.json").write_text(json.dumps({"answer_generation": {"valid_data": True, "function": [], "query": "q",
                                                                           "final_answer": "", "train_messages": [[{}, {}, {"role": "robot"}]]}}))
    (answers / "3_CoT@1.json").write_text(json.dumps({"answer_generation": {"valid_data": False, "function": [], "query": "q",
                                                                           "final_answer": ""}, "trys": []}))
    out = tmp_path / "c.json"
    assert main(["convert", str(answers), "--method", "CoT", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3 rejected" in err and "unknown role 'robot'" in json.dumps(json.loads(out.with_suffix(".rejects.json").read_text()))
    assert set(json.loads(out.read_text())) == {"588", "608", "1073", "9588", "91073"}
    assert main(["convert", str(tmp_path / "nowhere"), "--method", "CoT", "--out", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err
