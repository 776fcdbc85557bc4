"""Per-step parsing and scoring for the static metrics (FORMATS.md §5), in two flavours.

`*_official` functions reproduce the official α-UMi evaluator (evaluate-multi_agent.py) to the
letter, crashes included: where the official script would raise, they raise `OfficialCrash`
(the official script then writes no metrics at all). The other functions are umi's default
mode: the same definitions with the flaws fixed; `evaluate.py` documents each difference.

Stdlib + the `rouge` package (1.0.1, the official dependency; `rouge-score` gives other numbers).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CALL, FINISH, GIVE_UP, EMPTY = "call", "finish", "give up", "empty"
#: The official parser's action for a call without `Action:` and for non-calls (as gold-side filler).
NO_ACTION = "none"
END = "</s>"
#: Argument-F1 lists: "easy" = gold arguments `{}`, "hard" = any other gold arguments.
EASY, HARD = "easy", "hard"


class OfficialCrash(Exception):
    """The official evaluator raises on this input and writes no metrics; the message says where
    and with which exception, so compat mode can refuse with a one-line error."""


@dataclass(frozen=True)
class ParsedStep:
    """One reference or prediction string, parsed: the plan kind and what it carries."""

    plan: str
    action: str | None = None
    arguments: str | None = None
    answer: str | None = None
    #: Default mode only: what had to be repaired or was missing (counted in the metrics file).
    notes: tuple[str, ...] = field(default=())


# --- parsing --------------------------------------------------------------------------------------


def parse_official(text: str) -> ParsedStep:
    """The official `parse_output`: substring tests over the whole text, in this order."""
    if "Next: give up" in text:
        return ParsedStep(GIVE_UP)
    if "Next: conclusion" in text:
        if "conclusion:" in text:
            at = text.rfind("conclusion: ")
            if at < 0:
                raise OfficialCrash("has 'conclusion:' without a following space (str.rindex raises ValueError)")
            answer = text[at + len("conclusion: "):]
        else:
            answer = text
        return ParsedStep(FINISH, answer=answer.replace(END, ""))
    parts = text.split(END)
    if len(parts) < 2:
        raise OfficialCrash("parses as a call but has no '</s>' (text.split('</s>')[1] raises IndexError)")
    action, arguments = _action_and_arguments(parts[1])
    return ParsedStep(CALL, action=action, arguments=arguments)


def _action_and_arguments(segment: str) -> tuple[str, str]:
    """Action Input = after the last `Action Input:` (stripped, default `{}`); Action = after the
    last `Action:`, up to the first `Action Input:` after it, stripped (default `none`)."""
    at = segment.rfind("Action Input:")
    arguments = segment[at + len("Action Input:"):].strip() if at >= 0 else "{}"
    at = segment.rfind("Action:")
    if at < 0:
        return NO_ACTION, arguments
    action = segment[at + len("Action:"):].strip()
    cut = action.find("Action Input:")
    return (action[:cut].strip() if cut >= 0 else action), arguments


def parse_default(text: str) -> ParsedStep:
    """umi's parser: never raises. The decision is read from the planner's part only (before the
    first `</s>`), so a caller or summarizer output that mentions `Next: conclusion` cannot turn a
    call into a finish; a call without `</s>` is read from the whole text; an empty text is its own
    plan kind (`empty`), which matches no gold decision."""
    if not text.strip():
        return ParsedStep(EMPTY, notes=("empty_prediction",))
    head, separator, rest = text.partition(END)
    if "Next: give up" in head:
        return ParsedStep(GIVE_UP)
    if "Next: conclusion" in head:
        return _finish_default(text)
    notes: tuple[str, ...] = () if separator else ("missing_separator",)
    segment = rest.split(END)[0] if separator else text
    action, arguments = _action_and_arguments(segment)
    if action in ("", NO_ACTION):
        return ParsedStep(CALL, action=None, arguments=arguments, notes=(*notes, "call_without_action"))
    return ParsedStep(CALL, action=action, arguments=arguments, notes=notes)


def _finish_default(text: str) -> ParsedStep:
    for marker in ("conclusion: ", "conclusion:"):
        at = text.rfind(marker)
        if at >= 0:
            return ParsedStep(FINISH, answer=text[at + len(marker):].replace(END, ""))
    return ParsedStep(FINISH, answer=None, notes=("finish_without_answer",))


# --- argument F1 ----------------------------------------------------------------------------------


def key_f1(gold: dict[str, Any], predicted: dict[str, Any], equal: Callable[[Any, Any], bool]) -> float:
    """Argument F1 over keys: a gold key scores 1 when present with an equal value, 0.5 when
    present with another value; recall over gold keys, precision over predicted keys. The
    `+ 1e-30` denominators are the official arithmetic (kept so floats match bit for bit)."""
    full = half = 0
    for key, value in gold.items():
        if key in predicted:
            if equal(predicted[key], value):
                full += 1
            else:
                half += 1
    recall = (0.5 * half + full) / (len(gold) + 1e-30)
    precision = (0.5 * half + full) / (len(predicted) + 1e-30)
    if recall + precision == 0:
        return 0.0  # the official division by zero, caught by its bare except
    return (2 * recall * precision) / (recall + precision)


def arguments_official(gold_action: str, predicted_action: str, gold_arguments: str, predicted_arguments: str) -> tuple[tuple[str, ...], float] | None:
    """The official per-call argument score: which lists it is appended to, and the score; None
    when the sample is silently skipped (actions match but the gold arguments are not JSON).

    A wrong action appends 0 to *all three* lists (easy, hard and f1), whatever the gold."""
    if gold_action != predicted_action:
        return (EASY, HARD, "f1"), 0
    try:
        gold = json.loads(gold_arguments)
    except (ValueError, RecursionError):
        return None
    kind = EASY if gold == {} else HARD
    try:
        predicted = json.loads(predicted_arguments)
    except (ValueError, RecursionError):
        return (kind, "f1"), 0
    if kind == EASY:
        return (EASY, "f1"), (1 if predicted == {} else 0)
    if not isinstance(gold, dict) or not isinstance(predicted, dict):
        return (HARD, "f1"), 0  # the official `.items()` / `.keys()` raise AttributeError, caught
    return (HARD, "f1"), key_f1(gold, predicted, lambda a, b: a == b)


@dataclass(frozen=True)
class ArgumentScore:
    """Default-mode argument score of one gold call: its list (by the gold arguments) and score,
    or `skipped` with the reason when the gold arguments cannot be scored."""

    kind: str | None
    score: float = 0.0
    skipped: str | None = None
    note: str | None = None


def arguments_default(actions_match: bool, gold_arguments: str, predicted_arguments: str | None) -> ArgumentScore:
    """umi's argument score: a gold call whose arguments are not a JSON object is skipped whether
    or not the action matches (the official skips it only when it matches, and scores it 0
    otherwise); a wrong action scores 0 in the list of the *gold's* kind only; values compare
    with JSON types (`true != 1`, `"2" != 2`)."""
    try:
        gold = json.loads(gold_arguments)
    except (ValueError, RecursionError):
        return ArgumentScore(None, skipped="gold_arguments_unparsable")
    if not isinstance(gold, dict):
        return ArgumentScore(None, skipped="gold_arguments_not_object")
    kind = EASY if not gold else HARD
    if not actions_match:
        return ArgumentScore(kind, 0.0)
    try:
        predicted = json.loads(predicted_arguments or "{}")
    except (ValueError, RecursionError):
        return ArgumentScore(kind, 0.0, note="predicted_arguments_unparsable")
    if not isinstance(predicted, dict):
        return ArgumentScore(kind, 0.0, note="predicted_arguments_not_object")
    if kind == EASY:
        return ArgumentScore(kind, 1.0 if not predicted else 0.0)
    return ArgumentScore(kind, key_f1(gold, predicted, json_equal))


def json_equal(a: Any, b: Any) -> bool:
    """Equality of parsed JSON values that keeps JSON's types apart: Python says `True == 1`,
    JSON says `true` is not `1`. Numbers compare by value (`1 == 1.0`)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


# --- ROUGE-L --------------------------------------------------------------------------------------


def rouge_raises_on(text: str) -> bool:
    """Whether `rouge` 1.0.1 raises on this text: it splits on "." and drops empty pieces, so an
    empty text or one made only of periods leaves no sentence ("Hypothesis is empty.")."""
    return not any(piece for piece in text.split("."))


def rouge_l_official(hypotheses: list[str], references: list[str]) -> float:
    """The official corpus ROUGE-L F: `Rouge().get_scores(avg=True)` (the mean of per-pair F);
    0 without references. Where `rouge` raises, so does the official script."""
    if not references:
        return 0
    from rouge import Rouge

    try:
        return Rouge().get_scores(hyps=hypotheses, refs=references, avg=True)["rouge-l"]["f"]
    except (ValueError, RecursionError) as exc:
        raise OfficialCrash(f"rouge raised {type(exc).__name__}({exc}){_first_rouge_culprit(hypotheses, references)}") from None


def _first_rouge_culprit(hypotheses: list[str], references: list[str]) -> str:
    for index, (hyp, ref) in enumerate(zip(hypotheses, references)):
        if rouge_raises_on(hyp):
            return f" on the predicted answer {hyp!r} of gold finish #{index}"
        if rouge_raises_on(ref):
            return f" on the gold answer {ref!r} of gold finish #{index}"
    return ""


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """`rouge`'s LCS backtracking recurses once per word pair on the path: a sentence of ~500+
    words overflows Python's default limit. Python ≥ 3.11 does not use the C stack for these
    pure-Python calls, so raising the limit is safe."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def rouge_l(hypothesis: str, reference: str) -> float:
    """Per-pair ROUGE-L F with the `rouge` package (same value as one term of the official mean);
    the caller must not pass a text `rouge_raises_on`."""
    from rouge import Rouge

    words = len(hypothesis.split()) + len(reference.split())
    with _recursion_limit(4 * words + 1000):
        return Rouge(metrics=["rouge-l"]).get_scores(hypothesis, reference)[0]["rouge-l"]["f"]


__all__ = [
    "CALL", "FINISH", "GIVE_UP", "EMPTY", "NO_ACTION", "EASY", "HARD", "OfficialCrash", "ParsedStep",
    "parse_official", "parse_default", "key_f1", "arguments_official", "ArgumentScore",
    "arguments_default", "json_equal", "rouge_raises_on", "rouge_l_official", "rouge_l",
]
