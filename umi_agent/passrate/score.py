"""ToolEval's pass rate over converted answers (see ../shared/TOOLCALLING.md §12).

Per query and round: the deterministic rules first (the last tool step is not `Finish`, or the
final answer is empty or a give-up: Unsolved, no judge), then the judge's `check_answer_status`
on the final answer and, when it says Unsure, `parse_answer_status` on the whole answer.
A round scores Solved 1, Unsure 0.5, anything else 0 (a round whose verdict the judge never gave
included, as ToolEval scores a missing round) over the evaluated queries (converted and in the
test ids); the pass rate is the mean over rounds x 100 with the population std x 100.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from umi_agent.passrate.convert import FINISH, Converted
from umi_agent.passrate.judge import Garbage, Judge, JudgeError

STATUSES = ("Solved", "Unsolved", "Unsure")
POINTS = {"Solved": 1.0, "Unsure": 0.5}


class Verdict(BaseModel):
    """One query's label in one round, and where it came from."""

    status: str | None = None  # Solved | Unsolved | Unsure; None: the judge gave none
    rule: str | None = None  # no_finish | empty_answer | give_up: decided without a judge
    error: str | None = None
    calls: int = 0  # judge function calls it took (cached ones included)
    cached: int = 0
    via: str | None = None

    @property
    def label(self) -> str | None:
        return f"AnswerStatus.{self.status}" if self.status else None


def tool_steps(example: Converted) -> list[Any]:
    """The messages of the chain's tool nodes, in order (ToolEval's `get_steps` walk)."""
    nodes = example.answer.answer_details
    node, found = nodes[0] if nodes else {}, []
    while isinstance(node, dict) and "next" in node:
        if node.get("message") and node.get("role") == "tool":
            found.append(node["message"])
        if not node["next"]:
            break
        node = node["next"][0]
    return found


def steps_text(example: Converted) -> tuple[str, str]:
    """ToolEval's `answer_steps` and `final_step` strings (Python reprs of the tool messages)."""
    steps = tool_steps(example)
    final = f"Final step: {steps[-1]}" if steps else ""
    return "\n".join(f"Step {n}: {message}" for n, message in enumerate(steps, 1)), final


def rule_verdict(example: Converted) -> str | None:
    """Why the answer is Unsolved without asking a judge, or None when a judge must decide."""
    if f"'name': '{FINISH}'" not in steps_text(example)[1]:
        return "no_finish"
    final = example.answer.final_answer
    if final is None or final == "":
        return "empty_answer"
    if "give_up_and_restart" in (final if isinstance(final, str) else str(final)):
        return "give_up"
    return None


def accept_status(arguments: dict) -> None:
    if arguments.get("answer_status") not in STATUSES:
        raise Garbage(f"answer_status is {arguments.get('answer_status')!r}, not one of {', '.join(STATUSES)}")


def judged(judge: Judge, example: Converted, round_: int) -> Verdict:
    """check_answer_status, then parse_answer_status on Unsure (ToolEval's `check_is_solved`)."""
    verdict = Verdict()
    query, final = example.query, example.answer.final_answer
    try:
        for function, answer in (("check_answer_status", final), ("parse_answer_status", None)):
            if answer is None:
                answer = json.dumps(example.answer.model_dump())
            reply = judge.call(function, {"query": query, "answer": answer}, round_, accept_status)
            verdict.calls, verdict.cached = verdict.calls + 1, verdict.cached + reply.cached
            verdict.status, verdict.via = reply.arguments["answer_status"], reply.via
            if verdict.status != "Unsure":
                break
    except JudgeError as exc:
        return Verdict(error=str(exc), calls=verdict.calls, cached=verdict.cached)
    return verdict


def verdicts(examples: dict[str, Converted], judge: Judge | None, rounds: int, concurrency: int = 8,
             progress: str | None = None) -> dict[str, list[Verdict]]:
    """Every evaluated query's verdict per round (the judge asked only where a rule does not decide);
    `progress`: a name to print progress lines under (None: silent)."""
    out: dict[str, list[Verdict]] = {}
    asks = []
    for qid, example in examples.items():
        rule = rule_verdict(example)
        out[qid] = [Verdict(status="Unsolved", rule=rule) if rule else Verdict() for _ in range(rounds)]
        asks += [(qid, r) for r in range(rounds) if not rule]
    if asks and judge is None:
        for qid, r in asks:
            out[qid][r] = Verdict(error="no judge given (--judge-url, --judge-model)")
        return out
    from umi_data.plumbing.cli import Progress

    ask = Progress(len(asks), "judge verdicts", prog=progress or "", quiet=progress is None).wrap(
        lambda item: judged(judge, examples[item[0]], item[1]))
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        for (qid, r), verdict in zip(asks, pool.map(ask, asks)):
            out[qid][r] = verdict
    return out


class Score(BaseModel):
    evaluated: int
    rounds: int
    round_scores: list[float]
    pass_rate: float | None  # mean over rounds x 100
    std: float | None  # population std over rounds x 100
    pass_rate_upper: float | None  # were every missing verdict Solved: the most the judge could still give
    labels: dict[str, int]  # Solved / Unsolved / Unsure / missing, over queries x rounds
    rules: dict[str, int]  # no_finish / empty_answer / give_up, over queries (no judge asked)
    judge_errors: int
    judge_calls: int
    judge_cache_hits: int
    content_fallbacks: int


def score(found: dict[str, list[Verdict]], rounds: int) -> Score:
    """ToolEval's scoring of the verdicts (a missing verdict scores 0 and stays counted)."""
    n = len(found)
    round_scores = [sum(POINTS.get(v[r].status or "", 0.0) for v in found.values()) / n if n else 0.0 for r in range(rounds)]
    upper = [sum(POINTS.get(v[r].status or "Solved", 0.0) for v in found.values()) / n if n else 0.0 for r in range(rounds)]
    every = [verdict for per_round in found.values() for verdict in per_round]
    labels = Counter(v.status or "missing" for v in every)
    rules = Counter(v[0].rule for v in found.values() if v and v[0].rule)
    return Score(evaluated=n, rounds=rounds, round_scores=round_scores,
                 pass_rate=statistics.fmean(round_scores) * 100 if n and rounds else None,
                 std=statistics.pstdev(round_scores) * 100 if n and rounds else None,
                 pass_rate_upper=statistics.fmean(upper) * 100 if n and rounds else None,
                 labels={k: labels.get(k, 0) for k in (*STATUSES, "missing")}, rules=dict(sorted(rules.items())),
                 judge_errors=sum(v.error is not None for v in every), judge_calls=sum(v.calls for v in every),
                 judge_cache_hits=sum(v.cached for v in every), content_fallbacks=sum(bool(v.via and v.via != "tool_call") for v in every))


def tool_names(example: Converted) -> list[Any]:
    names = []
    for tool in example.available_tools if isinstance(example.available_tools, list) else []:
        if isinstance(tool, dict):
            names.append(tool["function"].get("name") if isinstance(tool.get("function"), dict) else tool.get("name"))
    return names


def result_rows(examples: dict[str, Converted], found: dict[str, list[Verdict]]) -> dict[str, dict]:
    """ToolEval's result JSON: {qid: {query, tool_names, answer_steps, final_step, is_solved}}."""
    rows = {}
    for qid, per_round in found.items():
        steps, final = steps_text(examples[qid])
        rows[qid] = {"query": examples[qid].query, "tool_names": tool_names(examples[qid]), "answer_steps": steps,
                     "final_step": final, "is_solved": {str(r): v.label for r, v in enumerate(per_round) if v.label}}
    return rows


def answer_stats(examples: dict[str, Converted]) -> dict[str, Any]:
    """What needs no judge: answered and give-up shares, steps and tool calls per query."""
    n = len(examples)
    rules = Counter(rule_verdict(example) for example in examples.values())
    calls = [sum(1 for m in tool_steps(e) if not (isinstance(m, dict) and m.get("name") == FINISH)) for e in examples.values()]
    return {"queries": n, "answered_share": rules[None] / n if n else None, "give_up_share": rules["give_up"] / n if n else None,
            "no_finish_share": rules["no_finish"] / n if n else None, "empty_answer_share": rules["empty_answer"] / n if n else None,
            "steps_per_query": statistics.fmean(e.answer.total_steps for e in examples.values()) if n else None,
            "calls_per_query": statistics.fmean(calls) if n else None}
