"""Static evaluation: samples and prompts (umi_agent.static), the official metrics in compat mode
and umi's fixed default mode (umi_agent.evaluate / metrics), and the CLI.

Expected values are computed by hand (arithmetic written out in the tests), never by calling the
code under test. ROUGE-L values follow the `rouge` 1.0.1 definition: sentences split on ".",
unique words, union LCS; F = 2PR / (P + R + 1e-8), so a perfect answer scores 1 - 5e-9.
The first half is hermetic; the second half needs ../shared/data (skips without it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from umi_agent.evaluate import PredictionsFileError, evaluate, evaluate_compat, evaluate_default, rows_from_records
from umi_agent.metrics import OfficialCrash, arguments_official, parse_default, parse_official
from umi_agent.static import (
    StaticDataError,
    clean_output,
    cut_plan,
    format_prediction,
    load_samples,
    oracle_predictions,
    predict_sample,
    samples_from_items,
    write_predictions,
)
from umi_data.rendering.prompts import fill, serialise_history

REPO = Path(__file__).resolve().parents[1]
TOOLS = [{"Name": "A", "function": "a tool", "input": {}}, {"Name": "B", "function": "b tool", "input": {"q": "string, the query"}}]
P_CALL, P_FIN, P_GIVE_UP = "I will call. Next: caller.", "Done. Next: conclusion.", "Cannot do it. Next: give up."
PERFECT_ROUGE = 2 * (1 * 1) / (1 + 1 + 1e-8)


def ref_call(action: str, args: str, plan: str = P_CALL) -> str:
    return f"assistant: {plan}</s>caller: Action: {action}\nAction Input: {args}</s>"


def pred_call(action: str, args: str, plan: str = P_CALL) -> str:
    return f"asssitant: {plan}</s>caller: Action: {action}\nAction Input: {args}"


def ref_fin(answer: str) -> str:
    return f"assistant: {P_FIN}</s>conclusion: {answer}</s>"


def pred_fin(answer: str) -> str:
    return f"asssitant: {P_FIN}</s>conclusion: {answer}"


def rec(reference: str, prediction: str) -> dict[str, Any]:
    return {"tools": TOOLS, "reference": reference, "predictions": prediction}


def rows(*pairs: tuple[str, str]) -> list[Any]:
    return rows_from_records([rec(r, p) for r, p in pairs])


def rouge_f(p: float, r: float) -> float:
    return 2.0 * ((p * r) / (p + r + 1e-8))


# A hand-made set covering every perturbation kind; expectations below are worked out by hand.
HAND_SET = [
    (ref_call("A", "{}"), pred_call("A", "{}")),                                    # 1 easy, exact
    (ref_call("A", '{"x": 1, "y": "2"}'), pred_call("A", '{"x": 1, "y": 2}')),       # 2 "2" vs 2: r = p = 1.5/2
    (ref_call("B", '{"q": "a"}'), pred_call("B", '{"q": "a", "z": 1}')),            # 3 extra arg: r 1, p 1/2
    (ref_call("B", '{"q": "a", "n": 3}'), pred_call("B", '{"q": "a"}')),            # 4 missing arg: r 1/2, p 1
    (ref_call("A", '{"x": 1}'), pred_call("C", '{"x": 1}')),                        # 5 invented tool
    (ref_call("A", "{}"), pred_call("Finish", '{"return_type": "give_answer"}')),   # 6 Finish as a call
    (ref_call("B", '{"q": "a"}'), pred_call("B", '{"q": "a"')),                     # 7 broken arguments
    (ref_fin("The answer is 42."), pred_fin("The answer is 42.")),                  # 8 exact answer
    (ref_fin("Paris is the capital of France"), pred_fin("Paris")),                 # 9 shortened answer
    (P_GIVE_UP, P_GIVE_UP),                                                         # 10 give up, right
    (P_GIVE_UP, pred_call("A", "{}")),                                              # 11 wrong plan (a real tool)
    (ref_fin("Rome"), P_GIVE_UP),                                                   # 12 wrong plan, answer "none"
    (ref_call("A", '{"x": 1}'), pred_call("A", '{"x": true}')),                     # 13 true vs 1
    (ref_call("B", '{"q": "a"}'), pred_call("A", '{"q": "a"}')),                    # 14 other (real) tool
]
F9 = rouge_f(1.0, 1 / 6)  # "Paris" against six unique words


# --- compat mode on the hand-made set -----------------------------------------------------------


def test_compat_hand_set() -> None:
    metrics = evaluate_compat(rows(*HAND_SET))
    assert metrics["plan_em"] == pytest.approx(12 / 14, abs=1e-9)  # 11 and 12 wrong
    assert metrics["action_em"] == pytest.approx(6 / 9, abs=1e-9)  # gold calls 1-7, 13, 14; 5, 6, 14 wrong
    # A wrong action (5, 6, 14) appends 0 to the easy, hard AND f1 lists, whatever the gold.
    assert metrics["easy_f1"] == pytest.approx((1 + 0 + 0 + 0) / 4, abs=1e-9)
    assert metrics["hard_f1"] == pytest.approx((0.75 + 2 / 3 + 2 / 3 + 0 + 0 + 0 + 1 + 0) / 8, abs=1e-9)
    assert metrics["f1"] == pytest.approx((1 + 0.75 + 2 / 3 + 2 / 3 + 0 + 0 + 0 + 1 + 0) / 9, abs=1e-9)
    assert metrics["hallu_rate"] == pytest.approx(2 / 14, abs=1e-9)  # C and Finish, over all samples
    assert metrics["rouge"] == pytest.approx((PERFECT_ROUGE + F9 + 0) / 3, abs=1e-9)


def test_compat_epsilon_is_added_after_the_division() -> None:
    metrics = evaluate_compat(rows((ref_call("A", "{}"), pred_call("B", "{}")), (ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}'))))
    assert metrics["easy_f1"] == 1e-30  # [0]: 0 / 1 + 1e-30
    assert metrics["hard_f1"] == 0.5 + 1e-30 and metrics["f1"] == 0.5 + 1e-30  # [0, 1] each


def test_compat_unparsable_gold_is_skipped_only_when_the_action_matches() -> None:
    easy, hard = (ref_call("A", "{}"), pred_call("A", "{}")), (ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}'))
    skipped = evaluate_compat(rows(easy, hard, (ref_call("B", '{"q": '), pred_call("B", '{"q": '))))
    counted = evaluate_compat(rows(easy, hard, (ref_call("B", '{"q": '), pred_call("A", '{"q": 1}'))))
    assert (skipped["easy_f1"], skipped["hard_f1"], skipped["f1"]) == (1.0, 1.0, 1.0)  # the broken gold left out
    assert (counted["easy_f1"], counted["hard_f1"]) == (0.5, 0.5) and counted["f1"] == pytest.approx(2 / 3, abs=1e-9)
    with pytest.raises(OfficialCrash, match="hard list is empty"):
        evaluate_compat(rows(easy, (ref_call("B", '{"q": '), pred_call("B", '{"q": 1}'))))


def test_compat_non_object_arguments_score_zero_in_their_list() -> None:
    metrics = evaluate_compat(rows(
        (ref_call("A", "{}"), pred_call("A", "[]")),            # easy, prediction not {} -> 0
        (ref_call("B", '{"q": 1}'), pred_call("B", "[1]")),     # hard, prediction not an object -> 0
        (ref_call("B", '{"q": 1}'), pred_call("B", "{}")),      # hard, R + P = 0 -> 0
        (ref_call("B", "[1]"), pred_call("B", "[1]")),          # gold not an object -> 0 in hard
        (ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}')),
    ))
    assert metrics["easy_f1"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["hard_f1"] == pytest.approx(1 / 4, abs=1e-9) and metrics["f1"] == pytest.approx(1 / 5, abs=1e-9)


def test_compat_non_finish_prediction_answers_none() -> None:
    metrics = evaluate_compat(rows((ref_fin("none"), P_GIVE_UP), (ref_call("A", "{}"), pred_call("A", "{}")), (ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}'))))
    assert metrics["rouge"] == pytest.approx(PERFECT_ROUGE, abs=1e-12)  # rouge("none", "none")


def test_compat_decision_markers_anywhere_in_the_text() -> None:
    tricky = pred_call("A", "{}") + " Next: conclusion"
    assert parse_official(tricky).plan == "finish" and parse_official(tricky).answer == tricky.replace("</s>", "")
    assert parse_default(tricky).plan == "call" and parse_default(tricky).action == "A"


def test_parse_official_rules() -> None:
    assert parse_official("x Next: give up. Next: conclusion.</s>conclusion: y").plan == "give up"
    finish = parse_official("asssitant: t Next: conclusion.</s>conclusion: a conclusion: b</s>")
    assert (finish.plan, finish.answer) == ("finish", "b")
    call = parse_official("p</s>caller: Action: A\nAction Input: {\"a\": 1}\nAction: B\nAction Input:  {} </s>Action: C")
    assert (call.action, call.arguments) == ("B", "{}")  # the second segment only, last markers
    bare = parse_official("p</s>caller: nothing here")
    assert (bare.action, bare.arguments) == ("none", "{}")
    assert parse_official("p</s>Action: A").arguments == "{}"


@pytest.mark.parametrize("prediction,culprit", [
    (f"asssitant: {P_CALL} caller: Action: A\nAction Input: {{}}", "no '</s>'"),
    ("", "no '</s>'"),
    (f"asssitant: {P_FIN}</s>conclusion:\nThe answer", "without a following space"),
])
def test_compat_refuses_where_the_official_evaluator_crashes(prediction: str, culprit: str) -> None:
    with pytest.raises(OfficialCrash, match=culprit):
        evaluate_compat(rows(*HAND_SET, (ref_call("A", "{}"), prediction)))


@pytest.mark.parametrize("answer", ["", "...", " . "])
def test_compat_rouge_raises_on_period_only_answers(answer: str) -> None:
    pairs = [*HAND_SET, (ref_fin("Paris"), pred_fin(answer))]
    if answer.strip(" ") == ".":  # " . " still leaves "  " pieces, which rouge accepts
        assert evaluate_compat(rows(*pairs))["rouge"] == pytest.approx((PERFECT_ROUGE + F9 + 0 + 0) / 4, abs=1e-9)
        return
    with pytest.raises(OfficialCrash, match="rouge raised ValueError"):
        evaluate_compat(rows(*pairs))


def test_compat_rouge_recursion_on_a_long_sentence() -> None:
    words = " ".join(f"w{i}" for i in range(1000))  # the LCS backtracking recurses once per word
    pairs = [*HAND_SET, (ref_fin(words), pred_fin(words))]
    with pytest.raises(OfficialCrash, match="RecursionError"):
        evaluate_compat(rows(*pairs))
    assert evaluate_default(rows(*pairs))[0]["rouge"] == pytest.approx((PERFECT_ROUGE + F9 + 0 + PERFECT_ROUGE) / 4, abs=1e-9)


def test_compat_empty_list_is_a_crash() -> None:
    only_hard = rows((ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}')))
    with pytest.raises(OfficialCrash, match="easy list is empty"):
        evaluate_compat(only_hard)
    metrics = evaluate_default(only_hard)[0]
    assert metrics["easy_f1"] is None and metrics["hard_f1"] == 1.0 and metrics["rouge"] is None


def test_arguments_official_lists() -> None:
    assert arguments_official("A", "B", "{}", "{}") == (("easy", "hard", "f1"), 0)
    assert arguments_official("A", "A", "{}", "{}") == (("easy", "f1"), 1)
    assert arguments_official("A", "A", "nope", "{}") is None
    assert arguments_official("A", "A", '{"a": 1, "b": 2}', '{"a": 1, "b": 3, "c": 4}') == (("hard", "f1"), pytest.approx(2 * 0.75 * 0.5 / 1.25))


# --- default mode: each fix -------------------------------------------------------------------


def test_default_hand_set() -> None:
    metrics, steps = evaluate_default(rows(*HAND_SET))
    assert metrics["plan_em"] == pytest.approx(12 / 14) and metrics["action_em"] == pytest.approx(6 / 9)
    # A wrong action scores 0 in the gold's own list only; true != 1 is a half match (r = p = 1/2).
    assert metrics["easy_f1"] == pytest.approx((1 + 0) / 2)
    assert metrics["hard_f1"] == pytest.approx((0.75 + 2 / 3 + 2 / 3 + 0 + 0 + 0.5 + 0) / 7)
    assert metrics["f1"] == pytest.approx((1 + 0.75 + 2 / 3 + 2 / 3 + 0 + 0 + 0 + 0.5 + 0) / 9)
    assert metrics["hallu_rate"] == pytest.approx(2 / 10)  # predicted calls: 1-7, 11, 13, 14
    assert metrics["hallu_rate_over_steps"] == pytest.approx(2 / 14)
    assert metrics["rouge"] == pytest.approx((PERFECT_ROUGE + F9 + 0) / 3, abs=1e-9)
    counts = metrics["counts"]
    assert counts["gold"] == {"call": 9, "finish": 3, "give up": 2} and counts["predicted"]["call"] == 10
    assert counts["plan_confusion"]["give up"] == {"give up": 1, "call": 1} and counts["finish_calls"] == 1
    assert (counts["easy"], counts["hard"]) == (2, 7) and metrics["skipped"] == {}
    assert metrics["notes"] == {"predicted_arguments_unparsable": 1}
    assert [s.hallucinated for s in steps].count(True) == 2


def test_default_scores_a_missing_separator_and_an_empty_prediction() -> None:
    pairs = [(ref_call("A", "{}"), f"asssitant: {P_CALL} caller: Action: A\nAction Input: {{}}"), (ref_call("A", "{}"), "  ")]
    metrics = evaluate_default(rows(*pairs))[0]
    assert metrics["plan_em"] == 0.5 and metrics["action_em"] == 0.5 and metrics["easy_f1"] == 0.5
    assert metrics["counts"]["predicted"] == {"call": 1, "finish": 0, "give up": 0, "empty": 1}
    assert metrics["notes"] == {"empty_prediction": 1, "missing_separator": 1}


def test_default_counts_skipped_gold_instead_of_hiding_them() -> None:
    metrics = evaluate_default(rows(
        (ref_call("A", "{}"), pred_call("A", "{}")),
        (ref_call("B", '{"q": '), pred_call("B", '{"q": ')),
        (ref_call("B", '{"q": '), pred_call("A", "{}")),
        (ref_call("B", "[1]"), pred_call("B", "[1]")),
        (ref_fin("none"), P_GIVE_UP),
    ))[0]
    assert metrics["f1"] == 1.0 and metrics["hard_f1"] is None and metrics["rouge"] is None
    assert metrics["action_em"] == pytest.approx(3 / 4)  # the actions are still judged
    assert metrics["skipped"] == {"gold_answer_none": 1, "gold_arguments_not_object": 1, "gold_arguments_unparsable": 2}


def test_default_rouge_fixes() -> None:
    metrics = evaluate_default(rows(
        (ref_fin("none of them"), P_GIVE_UP),           # compat: rouge("none", ...) > 0
        (ref_fin("Paris"), pred_fin("...")),             # compat: crash
        (ref_fin("Paris"), f"asssitant: {P_FIN}"),       # compat: the whole text is the answer
        (ref_fin("Paris."), pred_fin("Paris</s>")),
    ))[0]
    assert metrics["rouge"] == pytest.approx((0 + 0 + 0 + PERFECT_ROUGE) / 4, abs=1e-9)
    assert metrics["notes"] == {"empty_answer": 1, "finish_without_answer": 1}
    assert evaluate_compat(rows((ref_fin("none of them"), P_GIVE_UP), *HAND_SET))["rouge"] > (PERFECT_ROUGE + F9) / 4


def test_default_call_without_action_is_not_a_hallucination() -> None:
    metrics = evaluate_default(rows((ref_call("A", "{}"), pred_call("", "{}")), (ref_call("A", "{}"), "asssitant: x</s>caller: none")))[0]
    assert metrics["hallu_rate"] == 0.0 and metrics["notes"] == {"call_without_action": 2}
    assert evaluate_compat(rows((ref_call("A", "{}"), pred_call("", "{}")), (ref_call("B", '{"q": 1}'), pred_call("B", '{"q": 1}'))))["hallu_rate"] == 0.5


# --- static samples and predictions strings ---------------------------------------------------


ITEM = {"tools": TOOLS, "instruction": "Do it", "conversations": [
    {"from": "user", "value": "Do it"},
    {"from": "assistant", "value": "Thinking aloud."},
    {"from": "assistant", "value": P_CALL},
    {"from": "caller", "value": "Action: B\nAction Input: {\"q\": \"x\"}"},
    {"from": "observation", "value": "{\"r\": 1}"},
    {"from": "assistant", "value": P_FIN},
    {"from": "conclusion", "value": "It is 1."},
]}
GIVE_UP_ITEM = {"tools": TOOLS, "instruction": "No", "conversations": [{"from": "user", "value": "No"}, {"from": "assistant", "value": P_GIVE_UP}]}


def test_samples_from_items() -> None:
    call, finish, give_up = samples_from_items([ITEM, GIVE_UP_ITEM], source="t")
    assert [s.id for s in (call, finish, give_up)] == ["t/0/0", "t/0/1", "t/1/0"]
    assert (call.turn, call.decision, call.gold_action, call.gold_arguments) == (2, "caller", "B", '{"q": "x"}')
    assert call.history == ITEM["conversations"][:2]  # the thought without a decision is history
    assert call.reference == f"assistant: {P_CALL}</s>caller: Action: B\nAction Input: {{\"q\": \"x\"}}</s>"
    assert finish.reference == f"assistant: {P_FIN}</s>conclusion: It is 1.</s>" and give_up.reference == P_GIVE_UP
    assert finish.gold_prediction() == pred_fin("It is 1.") and give_up.gold_prediction() == P_GIVE_UP
    assert call.tool_names == ["A", "B"] and finish.gold_action is None


def test_role_inputs() -> None:
    call = samples_from_items([ITEM])[0]
    history = ITEM["conversations"][:2]
    assert call.planner_input() == fill("planner", "toolbench", tools=TOOLS, history_text=serialise_history(history))
    with_plan = serialise_history([*history, {"from": "assistant", "value": "P Next: caller."}])
    assert call.caller_input("P Next: caller.") == fill("caller", "toolbench", tools=TOOLS, history_text=with_plan, thought="P Next: caller.")
    assert call.summarizer_input("P Next: caller.").endswith(with_plan + " conclusion: ")
    official = call.caller_input("P Next: caller.", compat=True)
    assert "assistant: Thinking aloud.</s>planner: P Next: caller.</s>\n" in official
    assert "Next: caller or conclusion." in call.planner_input("toolalpaca")


def test_samples_reject_a_decision_without_its_turn() -> None:
    bad = {"tools": TOOLS, "conversations": [{"from": "user", "value": "q"}, {"from": "assistant", "value": P_CALL}, {"from": "observation", "value": "o"}]}
    with pytest.raises(StaticDataError, match=r"\[1\]\.conversations\[1\]: the assistant decides 'caller' but is followed by observation"):
        samples_from_items([ITEM, bad])
    with pytest.raises(StaticDataError, match=r"\[0\]\.tools"):
        samples_from_items([{"tools": [{"name": "x"}], "conversations": []}])


def test_cut_clean_and_format() -> None:
    assert cut_plan("a Next: caller. then Next: give up. more") == ("a Next: caller. then Next: give up.", "give up")
    assert cut_plan("a Next: conclusion. junk") == ("a Next: conclusion.", "conclusion")
    assert cut_plan(": just text") == ("just text Next: caller.", "caller")
    assert clean_output(" . ") == "none" and clean_output(": x") == "x"
    assert format_prediction("t Next: caller. junk", caller_output="Action: A\nAction Input: {}") == pred_call("A", "{}", plan="t Next: caller.")
    assert format_prediction("t Next: conclusion.", summarizer_output="") == "asssitant: t Next: conclusion.</s>conclusion: none"
    assert format_prediction(P_GIVE_UP + " trailing", caller_output="ignored") == P_GIVE_UP
    with pytest.raises(ValueError, match="caller's output is required"):
        format_prediction("t Next: caller.")


def test_predict_sample_with_scripted_models() -> None:
    call, finish, give_up = samples_from_items([ITEM, GIVE_UP_ITEM], source="t")
    seen: list[str] = []

    def caller(prompt: str) -> str:
        seen.append(prompt)
        return "Action: B\nAction Input: {\"q\": \"x\"}"

    record = predict_sample(call, lambda p: "Use B. Next: caller. extra", caller, lambda p: "unused")
    assert record["predictions"] == pred_call("B", '{"q": "x"}', plan="Use B. Next: caller.")
    assert seen == [call.caller_input("Use B. Next: caller.")]  # the predicted plan, not the gold one
    assert record["planner_output"] == "Use B. Next: caller. extra" and record["reference"] == call.reference
    quitter = predict_sample(finish, lambda p: P_GIVE_UP, caller, caller)
    assert quitter["predictions"] == P_GIVE_UP and "caller_output" not in quitter and len(seen) == 1
    metrics = evaluate_default(rows_from_records([record, quitter, *oracle_predictions([call, give_up])]))[0]
    assert metrics["plan_em"] == 0.75 and metrics["action_em"] == 1.0 and metrics["hard_f1"] == 1.0


# --- input files and the CLI ------------------------------------------------------------------


def run_evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "umi_agent.evaluate", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def test_cli_writes_metrics(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([rec(r, p) for r, p in HAND_SET]))
    default = run_evaluate("--predictions", str(path), "--out", str(tmp_path / "m.json"), "--cases", str(tmp_path / "c.json"))
    compat = run_evaluate("--predictions", str(path), "--compat", "alpha-umi", "--out", str(tmp_path / "mc.json"))
    assert default.returncode == 0 and compat.returncode == 0, default.stderr + compat.stderr
    metrics, official = json.loads((tmp_path / "m.json").read_text()), json.loads((tmp_path / "mc.json").read_text())
    assert metrics["mode"] == "default" and metrics["hallu_rate"] == pytest.approx(0.2)
    assert official["mode"] == "alpha-umi" and official["hallu_rate"] == pytest.approx(2 / 14)
    assert len(json.loads((tmp_path / "c.json").read_text())) == len(HAND_SET)
    assert "plan_em=0.8571" in default.stdout


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ("{}", "expected a predictions file"),
    ("[]", "the array is empty"),
    ('[{"reference": "x", "tools": []}]', r"\[0\]\.predictions: expected a string, got nothing"),
    ('[{"reference": "x", "predictions": null, "tools": []}, 3]', r"got null \(and 1 more bad records\)"),
    ('[{"reference": "x", "predictions": "y"}]', "needs 'tools'"),
])
def test_cli_bad_files_fail_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    for extra in ([], ["--compat", "alpha-umi"]):
        proc = run_evaluate("--predictions", str(path), "--out", str(tmp_path / "m.json"), *extra)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert re.search(message, proc.stderr), proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_cli_compat_crash_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([rec(r, p) for r, p in HAND_SET] + [{"id": "s9", **rec(ref_call("A", "{}"), "")}]))
    proc = run_evaluate("--predictions", str(path), "--compat", "alpha-umi", "--out", str(tmp_path / "m.json"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "sample [14] (id s9)" in proc.stderr and "IndexError" in proc.stderr
    assert run_evaluate("--predictions", str(path), "--out", str(tmp_path / "m.json")).returncode == 0


def test_rows_from_records_accepts_tool_names() -> None:
    row = rows_from_records([{"tool_names": ["A"], "reference": "r", "predictions": "p", "id": 3}])[0]
    assert row.tool_names == ("A",) and row.id == "3"
    with pytest.raises(PredictionsFileError):
        rows_from_records([{"tool_names": [1], "reference": "r", "predictions": "p"}])
    with pytest.raises(ValueError, match="unknown compat mode"):
        evaluate(rows(*HAND_SET), compat="toolbench")


def test_no_heavy_imports() -> None:
    code = "import sys, umi_agent.evaluate, umi_agent.static; print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


# --- the real test set (../shared) ------------------------------------------------------------


@pytest.fixture(scope="module")
def ood(shared_data: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    samples = load_samples(shared_data / "alpha_umi" / "test" / "out_of_domain.json")
    return samples, oracle_predictions(samples)


N, CALLS, FINISHES, GIVE_UPS, EASY, HARD = 1547, 1146, 294, 107, 471, 675


def test_real_sample_counts(ood: tuple[list[Any], list[dict[str, Any]]], shared_data: Path) -> None:
    samples, _ = ood
    items = json.loads((shared_data / "alpha_umi" / "test" / "out_of_domain.json").read_text())
    assert len(samples) == N
    assert [sum(s.decision == d for s in samples) for d in ("caller", "conclusion", "give up")] == [CALLS, FINISHES, GIVE_UPS]
    assistant_turns = sum(t["from"] == "assistant" for item in items for t in item["conversations"])
    assert assistant_turns - N == 111
    assert all(s.history == items[s.item]["conversations"][: s.turn] for s in samples)
    assert sum(json.loads(s.gold_arguments) == {} for s in samples if s.decision == "caller") == EASY


@pytest.mark.parametrize("compat", [None, "alpha-umi"])
def test_real_oracle_scores_one(ood: tuple[list[Any], list[dict[str, Any]]], compat: str | None, tmp_path: Path) -> None:
    _, oracle = ood
    metrics = evaluate(rows_from_records(oracle), compat=compat)
    for key in ("plan_em", "action_em", "easy_f1", "hard_f1", "f1"):
        assert metrics[key] == 1.0, key
    assert metrics["hallu_rate"] == 0.0
    assert metrics["rouge"] == pytest.approx(PERFECT_ROUGE, abs=1e-12)  # rouge's own 1e-8 smoothing
    if compat is None:
        assert metrics["counts"]["gold"] == {"call": CALLS, "finish": FINISHES, "give up": GIVE_UPS}
        assert (metrics["counts"]["easy"], metrics["counts"]["hard"]) == (EASY, HARD)
        assert metrics["skipped"] == {"gold_answer_none": 1} and metrics["notes"] == {}


def test_real_oracle_file_round_trip(ood: tuple[list[Any], list[dict[str, Any]]], tmp_path: Path) -> None:
    _, oracle = ood
    write_predictions(tmp_path / "oracle.json", oracle)
    proc = run_evaluate("--predictions", str(tmp_path / "oracle.json"), "--compat", "alpha-umi", "--out", str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "m.json").read_text())["f1"] == 1.0
    first = json.loads((tmp_path / "oracle.json").read_text())[0]
    assert {"id", "item", "step", "turn", "decision", "tools", "tool_names", "reference", "predictions"} <= set(first)


def _perturbed(oracle: list[dict[str, Any]], changes: dict[int, str]) -> list[Any]:
    return rows_from_records([{**r, "predictions": changes.get(i, r["predictions"])} for i, r in enumerate(oracle)])


def test_real_wrong_plans(ood: tuple[list[Any], list[dict[str, Any]]]) -> None:
    samples, oracle = ood
    calls = [i for i, s in enumerate(samples) if s.decision == "caller"][::10]
    k_easy = sum(samples[i].gold_arguments == "{}" for i in calls)
    k, k_hard = len(calls), len(calls) - k_easy
    changes = {i: samples[i].plan.replace("Next: caller.", "Next: give up.") for i in calls}
    compat = evaluate_compat(_perturbed(oracle, changes))
    assert compat["plan_em"] == pytest.approx((N - k) / N, abs=1e-9)
    assert compat["action_em"] == pytest.approx((CALLS - k) / CALLS, abs=1e-9)
    assert compat["easy_f1"] == pytest.approx((EASY - k_easy) / (EASY - k_easy + k), abs=1e-9)  # k zeros in each list
    assert compat["hard_f1"] == pytest.approx((HARD - k_hard) / (HARD - k_hard + k), abs=1e-9)
    assert compat["f1"] == pytest.approx((CALLS - k) / CALLS, abs=1e-9) and compat["hallu_rate"] == 0
    default = evaluate_default(_perturbed(oracle, changes))[0]
    assert default["easy_f1"] == pytest.approx((EASY - k_easy) / EASY) and default["hard_f1"] == pytest.approx((HARD - k_hard) / HARD)
    assert default["counts"]["plan_confusion"]["call"] == {"call": CALLS - k, "give up": k}


def test_real_invented_tools_and_finish_calls(ood: tuple[list[Any], list[dict[str, Any]]]) -> None:
    samples, oracle = ood
    invented = [i for i, s in enumerate(samples) if s.decision == "caller"][:40]
    finish = [i for i, s in enumerate(samples) if s.decision == "give up"][:10]
    changes = {i: pred_call("made_up_tool", samples[i].gold_arguments, plan=samples[i].plan) for i in invented}
    changes.update({i: pred_call("Finish", '{"return_type": "give_up_and_restart"}', plan="x Next: caller.") for i in finish})
    compat = evaluate_compat(_perturbed(oracle, changes))
    assert compat["hallu_rate"] == pytest.approx(50 / N, abs=1e-9)
    assert compat["plan_em"] == pytest.approx((N - 10) / N, abs=1e-9)
    assert compat["action_em"] == pytest.approx((CALLS - 40) / CALLS, abs=1e-9)
    default = evaluate_default(_perturbed(oracle, changes))[0]
    assert default["hallu_rate"] == pytest.approx(50 / (CALLS + 10)) and default["counts"]["finish_calls"] == 10


def test_real_argument_types(ood: tuple[list[Any], list[dict[str, Any]]]) -> None:
    samples, oracle = ood
    changes: dict[int, str] = {}
    expected_loss = 0.0
    for i, s in enumerate(samples):
        gold = json.loads(s.gold_arguments) if s.decision == "caller" else {}
        key = next((k for k, v in gold.items() if isinstance(v, int) and not isinstance(v, bool)), None)
        if key is None or len(changes) == 25:
            continue
        changes[i] = pred_call(s.gold_action, json.dumps({**gold, key: str(gold[key])}), plan=s.plan)  # 2 -> "2"
        expected_loss += 1 - (len(gold) - 0.5) / len(gold)  # one half match: r = p = (n - 0.5) / n
    assert len(changes) == 25
    compat = evaluate_compat(_perturbed(oracle, changes))
    assert compat["hard_f1"] == pytest.approx((HARD - expected_loss) / HARD, abs=1e-9)
    assert compat["f1"] == pytest.approx((CALLS - expected_loss) / CALLS, abs=1e-9)
    assert compat["easy_f1"] == 1 + 1e-30 and compat["action_em"] == 1.0


def _rouge_first_word(answer: str) -> float:
    """ROUGE-L F of the answer's first word against the answer: LCS 1 over m unique words."""
    sentences = [" ".join(piece.split()) for piece in answer.split(".") if piece]
    m = len({w for sentence in sentences for w in sentence.split(" ")})
    return rouge_f(1.0, 1 / m)


def test_real_shortened_answers(ood: tuple[list[Any], list[dict[str, Any]]]) -> None:
    samples, oracle = ood
    finishes = [i for i, s in enumerate(samples) if s.decision == "conclusion"]
    chosen = [i for i in finishes if samples[i].gold.split() and samples[i].gold.split()[0].isalpha()][:30]
    changes = {i: pred_fin(samples[i].gold.split()[0]).replace(P_FIN, samples[i].plan) for i in chosen}
    expected = (sum(_rouge_first_word(samples[i].gold) for i in chosen) + (FINISHES - 30) * PERFECT_ROUGE) / FINISHES
    compat = evaluate_compat(_perturbed(oracle, changes))
    assert compat["rouge"] == pytest.approx(expected, abs=1e-9) and compat["plan_em"] == 1.0
    default = evaluate_default(_perturbed(oracle, changes))[0]  # minus the gold "none" (not shortened)
    assert default["rouge"] == pytest.approx((expected * FINISHES - PERFECT_ROUGE) / (FINISHES - 1), abs=1e-9)


def test_real_missing_separator_and_empty_prediction(ood: tuple[list[Any], list[dict[str, Any]]]) -> None:
    samples, oracle = ood
    first_call = next(i for i, s in enumerate(samples) if s.decision == "caller")
    last_call = max(i for i, s in enumerate(samples) if s.decision == "caller")
    changes = {first_call: oracle[first_call]["predictions"].replace("</s>", " "), last_call: ""}
    with pytest.raises(OfficialCrash, match=rf"sample \[{first_call}\]"):
        evaluate_compat(_perturbed(oracle, changes))
    default = evaluate_default(_perturbed(oracle, changes))[0]
    assert default["plan_em"] == pytest.approx((N - 1) / N) and default["action_em"] == pytest.approx((CALLS - 1) / CALLS)
    assert default["notes"] == {"empty_prediction": 1, "missing_separator": 1}


@pytest.mark.parametrize("role,count", [("planner", 79), ("caller", 59), ("summarizer", 14)])
def test_role_inputs_equal_the_shipped_training_inputs(train_example: Path, role: str, count: int) -> None:
    samples = samples_from_items(json.loads((train_example / "raw_data_stage_2.json").read_text()))
    ours = {
        "planner": {s.planner_input() for s in samples},
        "caller": {s.caller_input(s.plan) for s in samples if s.decision == "caller"},
        "summarizer": {s.summarizer_input(s.plan) for s in samples if s.decision == "conclusion"},
    }[role]
    shipped = [r["input"] for r in json.loads((train_example / f"train_{role}.json").read_text())]
    assert len(shipped) == count and all(text in ours for text in shipped)


def test_default_mode_never_raises_on_garbage() -> None:
    import random

    fragments = ["</s>", "Next: conclusion", "Next: give up", "Next: caller.", "Action:", "Action Input:", "conclusion:",
                 "conclusion: ", "...", " ", "\n", "{", "}", '{"q": 1}', "[1]", "A", "Finish", "none", "x" * 3]
    rng = random.Random(7)
    garbage = ["".join(rng.choice(fragments) for _ in range(rng.randrange(0, 8))) for _ in range(400)]
    golds = [reference for reference, _ in HAND_SET] + [ref_fin("..."), ref_call("A", garbage[0]), ""]
    records = [rec(golds[i % len(golds)], text) for i, text in enumerate(garbage)]
    metrics, steps = evaluate_default(rows_from_records(records))
    assert len(steps) == 400 and metrics["counts"]["samples"] == 400
    for key in ("plan_em", "action_em", "hallu_rate", "easy_f1", "hard_f1", "f1", "rouge"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    assert metrics["skipped"]["reference_empty"] == sum(1 for i in range(400) if golds[i % len(golds)] == "")
