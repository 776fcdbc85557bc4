"""ToolEval's preference (win rate) of a run against a reference run, as StableToolBench's
`eval_preference.py` computes it (read from its behaviour, see docs/passrate.md).

Per query and round: a query only one run answered goes to that run; when the pass-rate
verdicts of the round say one answer is Solved and the other Unsolved, the Solved one wins;
otherwise the two answers, in a shuffled order, go through ToolEval's `normalized_openai_completions`:
the only Solved answer wins, else the only Unsure one, else the judge's `select_better_answer`
picks among the tied ones (identical answers: a random pick, no judge). Each round adds a point to
the preferred run; over the rounds the run with more points wins the query (equal: a tie).
win rate = queries won / queries compared (every test id).

Differences, all deliberate: the statuses are the pass-rate verdicts of the same round (ToolEval
asks `check_is_solved` again; umi reuses the cached verdict, so it asks fewer calls); the
`check_task_solvable` call ToolEval makes before `select_better_answer` is skipped, because its
answer does not enter the prompt (`q_status` is commented out there); the shuffle is seeded by
(query id, round), so a rerun is identical.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path
from typing import Any

from umi_agent.passrate.convert import Converted
from umi_agent.passrate.inputs import Group, dump_json, read_test_ids
from umi_agent.passrate.judge import Garbage, Judge, JudgeError
from umi_agent.passrate.score import Verdict, steps_text, tool_names

CSV_HEADER = ["query", "available_tools", "ref_model_intermediate_steps", "ref_model_final_step", "output_model_intermediate_steps",
              "output_model_final_step", "preference_label", "query_id", "ref_model", "output_model"]


def shown(example: Converted) -> dict[str, Any]:
    """An answer as ToolEval shows it to the judge: no method, the final answer cut to 1000 characters."""
    answer = example.answer
    final = answer.final_answer[:1000] if isinstance(answer.final_answer, str) else answer.final_answer
    return {"total_steps": answer.total_steps, "final_answer": final, "answer_details": answer.answer_details[:3000]}


def better(judge: Judge | None, query: Any, answers: list[dict], candidates: list[int], rng: random.Random, round_: int) -> int:
    """ToolEval's `select_better_answer` among `candidates` (positions in `answers`)."""
    if all(a["final_answer"] == answers[0]["final_answer"] and str(a["answer_details"]) == str(answers[0]["answer_details"])
           for a in answers[1:]):
        return rng.choice(candidates)
    if judge is None:
        raise JudgeError("no judge given (--judge-url, --judge-model)")

    def accept(arguments: dict) -> None:
        try:
            if int(arguments.get("index")) not in candidates:
                raise Garbage(f"index {arguments.get('index')!r} is not one of {candidates}")
        except (TypeError, ValueError):
            raise Garbage(f"index {arguments.get('index')!r} is not a number") from None

    reply = judge.call("select_better_answer", {"query": query, "answer_0": json.dumps(answers[0]), "answer_1": json.dumps(answers[1])},
                       round_, accept)
    return int(reply.arguments["index"])


def preferred(judge: Judge | None, examples: list[Converted], statuses: list[str], rng: random.Random, round_: int) -> int:
    """Which of the two answers (0: reference, 1: output) this round prefers."""
    order = [0, 1]
    rng.shuffle(order)
    answers, status = [shown(examples[i]) for i in order], [statuses[i] for i in order]
    for wanted in ("Solved", "Unsure"):
        found = [i for i, s in enumerate(status) if s == wanted]
        if len(found) == 1:
            return order[found[0]]
        if len(found) > 1:
            return order[better(judge, examples[0].query, answers, found, rng, round_)]
    return order[better(judge, examples[0].query, answers, [0, 1], rng, round_)]


def round_point(judge: Judge | None, ref: Group, out: Group, qid: str, verdicts: tuple[list[Verdict] | None, ...], round_: int) -> int | None:
    """0 (reference) or 1 (output) for this query and round; None when a judge verdict is missing."""
    answers = (ref.conversion.answers.get(qid), out.conversion.answers.get(qid))
    if answers[0] is None:
        return 1
    if answers[1] is None:
        return 0
    statuses = [v[round_].status if v is not None else None for v in verdicts]
    if None in statuses:
        return None
    if statuses == ["Solved", "Unsolved"] or statuses == ["Unsolved", "Solved"]:
        return statuses.index("Solved")
    try:
        return preferred(judge, list(answers), statuses, random.Random(f"{qid}:{round_}"), round_)
    except JudgeError:
        return None


def compare(ref: Group, out: Group, ref_found: dict[str, list[Verdict]], out_found: dict[str, list[Verdict]],
            args: argparse.Namespace, judge: Judge | None) -> tuple[dict[str, Any], dict[Path, bytes]]:
    """The preference of `out` over `ref` for one test set: the outcome and ToolEval's files."""
    ref_name = ref.model
    ids = read_test_ids(args.test_ids, out.name)
    ids = sorted(ids if ids is not None else set(ref.conversion.answers) | set(out.conversion.answers), key=_id_order)
    table: dict[str, dict[str, Any]] = {}
    for qid in ids:
        row: dict[str, Any] = {ref_name: 0, out.model: 0}
        for r in range(args.evaluate_times):
            point = round_point(judge, ref, out, qid, (ref_found.get(qid), out_found.get(qid)), r)
            if point is not None:
                row[(ref_name, out.model)[point]] += 1
            row[f"round_{r}"] = "complete" if point is not None else "incomplete"
        table[qid] = row
    labels = {qid: label(row[ref_name], row[out.model]) for qid, row in table.items()}
    n = len(table)
    outcome = {"reference": ref_name, "model": out.model, "queries": n, "win_rate": _share(labels, 2, n), "tie_rate": _share(labels, 3, n),
               "lose_rate": _share(labels, 1, n), "incomplete": sum("incomplete" in row.values() for row in table.values())}
    stem = args.out / "preference_results" / f"{out.name}_{ref_name}_{out.model}"
    return outcome, {stem.with_suffix(".json"): dump_json(table), stem.with_suffix(".csv"): preference_csv(ref, out, labels, ref_name)}


def label(ref_points: int, out_points: int) -> int:
    """ToolEval's preference label: 1 the reference, 2 the output, 3 a tie."""
    return 1 if ref_points > out_points else 2 if ref_points < out_points else 3


def _share(labels: dict[str, int], value: int, n: int) -> float:
    return sum(v == value for v in labels.values()) / n if n else 0.0


def _id_order(qid: str) -> tuple[int, str]:
    return (int(qid), qid) if qid.isdigit() else (1 << 62, qid)


def preference_csv(ref: Group, out: Group, labels: dict[str, int], ref_name: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="\t")
    writer.writerow(CSV_HEADER)
    for qid, value in labels.items():
        ref_example, out_example = ref.conversion.answers.get(qid), out.conversion.answers.get(qid)
        known = ref_example or out_example
        ref_steps, ref_final = steps_text(ref_example) if ref_example else ("", "")
        out_steps, out_final = steps_text(out_example) if out_example else ("", "")
        writer.writerow([known.query if known else "", str(tool_names(known)) if known else "[]", ref_steps, ref_final,
                         out_steps, out_final, str(value), qid, ref_name, out.model])
    return buffer.getvalue().encode("utf-8", "surrogatepass")
