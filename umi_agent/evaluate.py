"""Step-level static metrics of the α-UMi paper (Table 1) over a predictions file.

    python -m umi_agent.evaluate --predictions FILE [--compat alpha-umi] --out metrics.json [--cases FILE]

Input: a JSON array of objects with `reference` and `predictions` strings and the sample's tools
(`tools`, short-form objects with `Name`, or `tool_names`); see `umi_agent.static` for the file
umi writes. Output keys in both modes: `plan_em`, `action_em`, `hallu_rate`, `easy_f1`, `hard_f1`,
`f1`, `rouge`.

`--compat alpha-umi` equals the official evaluator (FORMATS.md §5), quirks included: `+ 1e-30` on
the F1 means, hallucinations over all samples (`Finish` and an empty action name count), a wrong
action adds 0 to the easy, hard *and* f1 lists, gold arguments that are not JSON are skipped only
when the action matches, a non-finish prediction answers `"none"` for ROUGE, decisions found
anywhere in the text. Where the official script crashes (a call without `</s>`, an empty
prediction, `conclusion:` without a space, an empty or period-only answer for `rouge`, a sentence
long enough to overflow `rouge`'s recursion, an empty easy or hard list) it writes no metrics at
all; compat mode then refuses with a one-line error naming the sample, because no official number
exists to reproduce. The default mode scores such files.

Default mode (umi's fixes, same keys, plain means, `null` where a metric has no sample):
- never crashes on a missing `</s>` or an empty prediction (an empty one is a plan kind of its
  own, `empty`, that matches nothing; see `metrics.parse_default`);
- `hallu_rate` = hallucinated calls / predicted calls (the official value is also reported as
  `hallu_rate_over_steps`); a call without an action name is not a hallucination;
- no silent skips: every sample left out of a metric is counted under `skipped` by reason
  (gold arguments not JSON or not an object, gold answer `"none"` or empty);
- a wrong action scores 0 in the gold's own list (easy or hard), not in both;
- ROUGE-L per gold finish: a non-finish prediction scores 0 (not `rouge("none", gold)`), an empty
  or period-only answer scores 0 instead of crashing;
- argument values compare with JSON types (`true != 1`);
- plus counts: samples, gold and predicted plan kinds, the plan confusion, per-decision plan
  accuracy, list sizes, hallucinated and `Finish` calls, and what had to be repaired (`notes`).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from umi_data.plumbing.cli import Parser
from umi_agent.jsonio import InputFileError, encode_json, json_type, read_json_list, write_files
from umi_agent.metrics import (
    CALL,
    EASY,
    EMPTY,
    FINISH,
    GIVE_UP,
    HARD,
    NO_ACTION,
    OfficialCrash,
    ParsedStep,
    arguments_default,
    arguments_official,
    parse_default,
    parse_official,
    rouge_l,
    rouge_l_official,
    rouge_raises_on,
)

COMPAT_MODES = ("alpha-umi",)
METRIC_KEYS = ("plan_em", "action_em", "hallu_rate", "easy_f1", "hard_f1", "f1", "rouge")
EXIT_ERROR = 2
PROG = "umi-agent evaluate"
PLAN_KINDS = (CALL, FINISH, GIVE_UP, EMPTY)
#: The official predicted answer of a gold finish when the prediction is not a finish, and the
#: answer the official stage 2 writes for a give_answer without one.
NO_ANSWER = "none"


class PredictionsFileError(InputFileError):
    """A predictions file that cannot be scored as given (one-line message)."""


@dataclass(frozen=True)
class PredictionRow:
    """What the evaluator reads of one predictions record."""

    index: int
    id: str | None
    reference: str
    prediction: str
    tool_names: tuple[str, ...]

    def label(self) -> str:
        return f"sample [{self.index}]" + (f" (id {self.id})" if self.id is not None else "")


# --- input --------------------------------------------------------------------------------------


def load_predictions(path: Path) -> list[PredictionRow]:
    records = read_json_list(path, "a predictions file (objects with reference, predictions, tools)")
    try:
        return rows_from_records(records)
    except PredictionsFileError as exc:
        raise PredictionsFileError(f"{path}: {exc}") from None


def rows_from_records(records: Sequence[Any]) -> list[PredictionRow]:
    """Validate every record; the error names the first bad one and how many are bad."""
    rows: list[PredictionRow] = []
    errors: list[str] = []
    for index, record in enumerate(records):
        try:
            rows.append(_row(index, record))
        except PredictionsFileError as exc:
            errors.append(str(exc))
    if errors:
        more = f" (and {len(errors) - 1} more bad records)" if len(errors) > 1 else ""
        raise PredictionsFileError(errors[0] + more)
    return rows


def _row(index: int, record: Any) -> PredictionRow:
    where = f"[{index}]"
    if not isinstance(record, Mapping):
        raise PredictionsFileError(f"{where}: expected an object, got {json_type(record)}")
    for key in ("reference", "predictions"):
        if not isinstance(record.get(key), str):
            got = json_type(record[key]) if key in record else "nothing"
            raise PredictionsFileError(f"{where}.{key}: expected a string, got {got}")
    sample_id = record.get("id")
    return PredictionRow(index, None if sample_id is None else str(sample_id), record["reference"], record["predictions"], _tool_names(record, where))


def _tool_names(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    tools = record.get("tools")
    if isinstance(tools, list) and all(isinstance(t, Mapping) and isinstance(t.get("Name"), str) for t in tools):
        return tuple(t["Name"] for t in tools)
    names = record.get("tool_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return tuple(names)
    raise PredictionsFileError(f"{where}: needs 'tools' (objects with a string 'Name') or 'tool_names' (strings)")


# --- compat mode: the official evaluator --------------------------------------------------------


def evaluate_compat(rows: Sequence[PredictionRow]) -> dict[str, Any]:
    """The official metrics, or `OfficialCrash` where the official script would write none."""
    plans_ok = hallucinated = 0
    calls: list[tuple[str, str, str, str]] = []  # gold action, predicted action, gold and predicted arguments
    answers: list[tuple[str, str]] = []  # predicted answer, gold answer
    for row in rows:
        gold, pred = _parse_compat(row, row.reference, "reference"), _parse_compat(row, row.prediction, "prediction")
        if pred.action is not None and pred.action != NO_ACTION and pred.action not in row.tool_names:
            hallucinated += 1
        plans_ok += gold.plan == pred.plan
        if gold.plan == FINISH:
            answers.append((NO_ANSWER if pred.answer is None else pred.answer, gold.answer or ""))
        elif gold.plan == CALL:
            pred_action = NO_ACTION if pred.action is None else pred.action
            pred_arguments = "{}" if pred.arguments is None else pred.arguments
            calls.append((str(gold.action), pred_action, str(gold.arguments), pred_arguments))
    rouge = rouge_l_official([a for a, _ in answers], [g for _, g in answers])
    easy_f1, hard_f1, f1 = _f1_compat(calls)
    return {
        "rouge": rouge,
        "plan_em": plans_ok / len(rows),
        "action_em": sum(g == p for g, p, _, _ in calls) / len(calls) if calls else 0,
        "easy_f1": easy_f1,
        "hard_f1": hard_f1,
        "f1": f1,
        "hallu_rate": hallucinated / len(rows),
    }


def _parse_compat(row: PredictionRow, text: str, which: str) -> ParsedStep:
    try:
        return parse_official(text)
    except OfficialCrash as exc:
        raise OfficialCrash(f"{row.label()}: the {which} {exc}") from None


def _f1_compat(calls: Sequence[tuple[str, str, str, str]]) -> tuple[float, float, float]:
    lists: dict[str, list[float]] = {EASY: [], HARD: [], "f1": []}
    for gold_action, pred_action, gold_arguments, pred_arguments in calls:
        scored = arguments_official(gold_action, pred_action, gold_arguments, pred_arguments)
        if scored is not None:
            for name in scored[0]:
                lists[name].append(scored[1])
    for name, values in lists.items():
        if not values:
            raise OfficialCrash(f"the {name} list is empty (no gold call scored there), so the official mean divides by zero")
    return tuple(sum(values) / len(values) + 1e-30 for values in lists.values())  # type: ignore[return-value]


# --- default mode -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepScore:
    """Everything the default mode decides about one sample (the `--cases` rows)."""

    index: int
    id: str | None
    gold_plan: str
    predicted_plan: str
    plan_ok: bool
    action_ok: bool | None = None
    argument_list: str | None = None
    argument_score: float | None = None
    hallucinated: bool = False
    predicted_action: str | None = None
    rouge: float | None = None
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def score_step(row: PredictionRow) -> StepScore:
    """Parse both strings with the default parser and score every metric this sample feeds."""
    gold, pred = parse_default(row.reference), parse_default(row.prediction)
    base = dict(index=row.index, id=row.id, gold_plan=gold.plan, predicted_plan=pred.plan, plan_ok=gold.plan == pred.plan,
                predicted_action=pred.action, notes=pred.notes,
                hallucinated=pred.plan == CALL and pred.action is not None and pred.action not in row.tool_names)
    if gold.plan == CALL:
        return StepScore(**{**base, **_call_scores(gold.action, gold.arguments or "{}", pred)})
    if gold.plan == FINISH:
        return StepScore(**{**base, **_finish_scores(gold.answer, pred)})
    if gold.plan == EMPTY:
        return StepScore(**{**base, "plan_ok": False, "skipped": ("reference_empty",)})
    return StepScore(**base)


def _call_scores(gold_action: str | None, gold_arguments: str, pred: ParsedStep) -> dict[str, Any]:
    if gold_action is None:
        return {"skipped": ("gold_call_without_action",)}
    action_ok = pred.plan == CALL and pred.action == gold_action
    arguments = arguments_default(action_ok, gold_arguments, pred.arguments)
    if arguments.skipped:
        return {"action_ok": action_ok, "skipped": (arguments.skipped,)}
    notes = (*pred.notes, arguments.note) if arguments.note else pred.notes
    return {"action_ok": action_ok, "argument_list": arguments.kind, "argument_score": arguments.score, "notes": notes}


def _finish_scores(gold_answer: str | None, pred: ParsedStep) -> dict[str, Any]:
    if gold_answer is None or rouge_raises_on(gold_answer):
        return {"skipped": ("gold_answer_empty",)}
    if gold_answer.strip() == NO_ANSWER:
        return {"skipped": ("gold_answer_none",)}
    if pred.plan != FINISH or pred.answer is None:
        return {"rouge": 0.0}
    if rouge_raises_on(pred.answer):
        return {"rouge": 0.0, "notes": (*pred.notes, "empty_answer")}
    return {"rouge": rouge_l(pred.answer, gold_answer)}


def evaluate_default(rows: Sequence[PredictionRow]) -> tuple[dict[str, Any], list[StepScore]]:
    """umi's metrics (module docstring) and the per-sample scores they come from."""
    steps = [score_step(row) for row in rows]
    scored = [s for s in steps if "reference_empty" not in s.skipped]
    calls = [s for s in steps if s.predicted_plan == CALL]
    hallucinated = sum(s.hallucinated for s in steps)
    metrics: dict[str, Any] = {
        "mode": "default",
        "plan_em": _mean([s.plan_ok for s in scored]),
        "action_em": _mean([s.action_ok for s in steps if s.action_ok is not None]),
        "hallu_rate": hallucinated / len(calls) if calls else None,
        "easy_f1": _mean([s.argument_score for s in steps if s.argument_list == EASY]),
        "hard_f1": _mean([s.argument_score for s in steps if s.argument_list == HARD]),
        "f1": _mean([s.argument_score for s in steps if s.argument_list is not None]),
        "rouge": _mean([s.rouge for s in steps if s.rouge is not None]),
        "hallu_rate_over_steps": hallucinated / len(steps),
        "plan_em_by_gold": {kind: _mean([s.plan_ok for s in scored if s.gold_plan == kind]) for kind in (CALL, FINISH, GIVE_UP)},
        "counts": _counts(steps, scored, calls),
        "skipped": dict(sorted(Counter(r for s in steps for r in s.skipped).items())),
        "notes": dict(sorted(Counter(n for s in steps for n in s.notes).items())),
    }
    return metrics, steps


def _counts(steps: Sequence[StepScore], scored: Sequence[StepScore], calls: Sequence[StepScore]) -> dict[str, Any]:
    gold = Counter(s.gold_plan for s in scored)
    predicted = Counter(s.predicted_plan for s in scored)
    confusion = {g: {p: n for p in PLAN_KINDS if (n := sum(1 for s in scored if s.gold_plan == g and s.predicted_plan == p))} for g in (CALL, FINISH, GIVE_UP)}
    return {
        "samples": len(steps),
        "gold": {kind: gold[kind] for kind in (CALL, FINISH, GIVE_UP)},
        "predicted": {kind: predicted[kind] for kind in PLAN_KINDS},
        "plan_confusion": confusion,
        "action_scored": sum(s.action_ok is not None for s in steps),
        "easy": sum(s.argument_list == EASY for s in steps),
        "hard": sum(s.argument_list == HARD for s in steps),
        "rouge_scored": sum(s.rouge is not None for s in steps),
        "predicted_calls": len(calls),
        "hallucinated_calls": sum(s.hallucinated for s in steps),
        "finish_calls": sum(s.predicted_action == "Finish" for s in calls),
    }


def _mean(values: Sequence[Any]) -> float | None:
    return sum(values) / len(values) if values else None


# --- entry points -------------------------------------------------------------------------------


def evaluate(rows: Sequence[PredictionRow], compat: str | None = None) -> dict[str, Any]:
    """Metrics for `rows` in the default mode or a compat mode (raises `OfficialCrash` there)."""
    if compat is None:
        return evaluate_default(rows)[0]
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat mode {compat!r}; valid: {', '.join(COMPAT_MODES)}")
    return {"mode": compat, **evaluate_compat(rows)}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="umi-agent evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, required=True, metavar="FILE", help="predictions JSON (an array of {reference, predictions, tools})")
    parser.add_argument("--compat", choices=COMPAT_MODES, default=None, help="reproduce the official evaluator exactly (refuses inputs it crashes on)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write metrics.json")
    parser.add_argument("--cases", type=Path, default=None, metavar="FILE", help="default mode: also write the per-sample scores here (JSON array)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cases is not None and args.compat is not None:
        print("umi-agent evaluate: error: --cases is available in the default mode only", file=sys.stderr)
        return EXIT_ERROR
    from umi_data.plumbing.outdir import OutDirError, check_out_file

    try:
        check_out_file(args.out, PROG, lambda value: isinstance(value, dict) and "mode" in value and "input" in value)
        if args.cases is not None:
            check_out_file(args.cases, PROG, lambda value: isinstance(value, list) and all(isinstance(c, dict) and "gold_plan" in c for c in value))
        rows = load_predictions(args.predictions)
        if args.compat is None:
            metrics, steps = evaluate_default(rows)
        else:
            metrics, steps = evaluate(rows, args.compat), []
        metrics["input"] = {"predictions": str(args.predictions), "sha256": _sha256(args.predictions)}
        outputs = {args.out: encode_json(metrics)}  # every output encoded before any is written
        if args.cases is not None:
            outputs[args.cases] = encode_json([asdict(step) for step in steps])
        write_files(outputs)
    except OfficialCrash as exc:
        print(f"umi-agent evaluate: error: --compat {args.compat}: {exc}; the official evaluator crashes here "
              "and writes no metrics (the default mode scores this file)", file=sys.stderr)
        return EXIT_ERROR
    except (InputFileError, OutDirError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(" ".join(f"{key}={_show(metrics.get(key))}" for key in METRIC_KEYS))
    return 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _show(value: Any) -> str:
    return "null" if value is None else f"{value:.4f}"


__all__ = [
    "COMPAT_MODES", "METRIC_KEYS", "PredictionsFileError", "PredictionRow", "StepScore", "load_predictions",
    "rows_from_records", "evaluate_compat", "evaluate_default", "score_step", "evaluate", "main",
]

if __name__ == "__main__":
    sys.exit(main())
