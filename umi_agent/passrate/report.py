"""The scoring run behind `python -m umi_agent.passrate`: groups -> verdicts -> ToolEval's
result files, a summary, and (with --win-rate) the preference against a reference run."""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from umi_agent.jsonio import encode_json, scrub_text, write_files
from umi_agent.passrate.convert import Converted
from umi_agent.passrate.inputs import Group, dump_json, load, read_test_ids
from umi_agent.passrate.score import Verdict, answer_stats, result_rows, score, verdicts

CSV_HEADER = ["query", "available_tools", "model_intermediate_steps", "model_final_step", "model", "query_id", "is_solved"]


def evaluated(group: Group, ids: set[str] | None) -> dict[str, Converted]:
    """The converted answers that are scored: those in the test ids (all when none are given)."""
    return {qid: answer for qid, answer in group.conversion.answers.items() if ids is None or qid in ids}


def result_csv(rows: dict[str, dict], model: str) -> bytes:
    """ToolEval's tab-separated result file (is_solved as the Python dict it prints)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="\t")
    writer.writerow(CSV_HEADER)
    for qid, row in rows.items():
        solved = {int(r): label for r, label in row["is_solved"].items()}
        writer.writerow([row["query"], row["tool_names"], row["answer_steps"], row["final_step"], model, qid, solved])
    return buffer.getvalue().encode("utf-8", "surrogatepass")


def group_files(out: Path, group: Group, rows: dict[str, dict]) -> dict[Path, bytes]:
    files = {out / "pass_rate_results" / group.model / f"{group.name}_{group.model}.json": dump_json(rows),
             out / "pass_rate_results" / group.model / f"{group.name}_{group.model}.csv": result_csv(rows, group.model)}
    if group.method is not None:  # read from answer files: the converted file ToolEval would read
        converted = out / "model_predictions_converted" / group.model / f"{group.name}.json"
        files[converted] = (json.dumps(group.conversion.dump(), indent=2) + "\n").encode("utf-8", "surrogatepass")
    return files


def tool_cache_rate(group: Group) -> float | None:
    """Tool-response cache hit rate, when the answer files carry `tool_cache: {hits, misses}`
    (umi's replay runs); None when they do not say."""
    if group.method is None:
        return None
    hits = misses = 0
    for path in Path(group.source).glob(f"*{group.method}*.json"):
        try:
            counts = json.loads(path.read_bytes()).get("tool_cache") or {}
            hits, misses = hits + int(counts.get("hits", 0)), misses + int(counts.get("misses", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return hits / (hits + misses) if hits + misses else None


def score_group(group: Group, args: argparse.Namespace, judge: Any) -> tuple[dict[str, Any], dict[str, list[Verdict]], dict[Path, bytes]]:
    examples = evaluated(group, read_test_ids(args.test_ids, group.name))
    found = verdicts(examples, judge, args.evaluate_times, args.judge_concurrency,
                     progress=None if args.quiet else f"umi-agent passrate: {group.name} {group.model}")
    rows = result_rows(examples, found)
    result = {"model": group.model, "source": group.source, "method": group.method, "converted": len(group.conversion.answers),
              "rejects": [r.model_dump() for r in group.conversion.rejects], "replaced": group.conversion.replaced,
              **score(found, args.evaluate_times).model_dump(), **answer_stats(examples), "tool_cache_hit_rate": tool_cache_rate(group)}
    return result, found, group_files(args.out, group, rows)


def hit_rate_text(result: dict[str, Any]) -> str:
    """`, tool cache hit rate X%` when the answer files said (umi's replay runs), else nothing."""
    rate = result.get("tool_cache_hit_rate")
    return "" if rate is None else f", tool cache hit rate {rate * 100:.1f}%"


def line(name: str, result: dict[str, Any]) -> str:
    rate = "n/a" if result["pass_rate"] is None else f"{result['pass_rate']:.1f}% ± {result['std']:.1f}"
    share = result["answered_share"]
    missing = result["labels"]["missing"]
    if missing:  # a lower bound only: say so, and how high the missing verdicts could take it
        rate = f"at least {result['pass_rate']:.1f}% (at most {result['pass_rate_upper']:.1f}%: {missing} verdicts missing)"
    return (f"{name} {result['model']}: pass rate {rate} over {result['evaluated']} queries x {result['rounds']} rounds "
            f"(answered {0 if share is None else share * 100:.1f}%{hit_rate_text(result)}, judge calls {result['judge_calls']}, "
            f"cached {result['judge_cache_hits']}, judge errors {result['judge_errors']})")


def run(args: argparse.Namespace, judge: Any) -> int:
    """Score every group (and compare with the reference run); write the files; print a line each."""
    from umi_agent.passrate.preference import compare

    args.out.mkdir(parents=True, exist_ok=True)  # an output that cannot be made fails before any judge call
    groups = load(args.inputs, args.method, args.model_name, args.order)
    references = {g.name: g for g in load([args.win_rate], None, None, args.order)} if args.win_rate else {}
    files: dict[Path, bytes] = {}
    summary: dict[str, Any] = {"judge": judge_info(judge), "evaluate_times": args.evaluate_times, "groups": {}, "win_rate": {}}
    for group in groups:
        result, found, written = score_group(group, args, judge)
        files.update(written)
        summary["groups"].setdefault(group.name, {})[group.model] = result
        print(line(group.name, result))
        if args.win_rate and group.name not in references:
            print(f"{group.name} {group.model}: no test set {group.name} in {args.win_rate}, so no win rate", file=sys.stderr)
        if group.name in references:
            ref = references[group.name]
            if ref.model == group.model:  # two runs of one name: keep their result files apart
                ref = ref.model_copy(update={"model": f"{ref.model}_reference"})
            ref_result, ref_found, ref_written = score_group(ref, args, judge)
            files.update(ref_written)
            summary["groups"][group.name][ref.model] = ref_result
            print(line(group.name, ref_result))
            outcome, pref_files = compare(ref, group, ref_found, found, args, judge)
            files.update(pref_files)
            summary["win_rate"][group.name] = outcome
            print(f"{group.name} {group.model} against {ref.model}: win rate {outcome['win_rate'] * 100:.1f}%, "
                  f"tie {outcome['tie_rate'] * 100:.1f}% over {outcome['queries']} queries")
    summary["average"] = averages(summary["groups"])
    errors = sum(r["judge_errors"] for per in summary["groups"].values() for r in per.values())
    errors += sum(outcome["incomplete"] for outcome in summary["win_rate"].values())
    summary["judge"] = judge_info(judge)
    files[args.out / "summary.json"] = encode_json(scrub_text(summary))
    write_files(files)
    if errors:
        why = ("no judge given (--judge-url URL --judge-model NAME)" if judge is None
               else judge.unreachable or "see summary.json")
        print(f"umi-agent passrate: {errors} verdicts missing (scored 0, as ToolEval scores a missing round; "
              f"an incomplete comparison counts one): {why}",
              file=sys.stderr)
    return 1 if errors else 0


def averages(groups: dict[str, dict[str, dict]]) -> dict[str, float | None]:
    """Per model, the mean pass rate over its test sets (the paper's "Avg." column)."""
    by_model: dict[str, list[float]] = {}
    for per_model in groups.values():
        for model, result in per_model.items():
            if result["pass_rate"] is not None:
                by_model.setdefault(model, []).append(result["pass_rate"])
    return {model: statistics.fmean(rates) for model, rates in by_model.items()}


def judge_info(judge: Any) -> dict[str, Any] | None:
    if judge is None:
        return None
    return {"url": judge.config.url, "model": judge.config.model, "temperature": judge.config.temperature,
            "max_tokens": judge.config.max_tokens, "counts": dict(sorted(judge.counts.items())),
            "content_mode": judge.content_mode, "unusable": judge.unreachable}
