"""A source format of your own, fed to umi's builder: a small `Source` (a raw-format JSON Schema
and a `convert` function), registered with `umi_data.sources.register_source`, then
`build_corpus` as for any built-in format: rejects with reasons, role corpora, card, DuckDB.

    .venv/bin/python examples/custom_source.py --out example-out/

The format here is a help-desk log, one JSON object per line (`.jsonl`):

    {"question": "...", "calls": [{"tool": "...", "args": {...}, "result": "..."}], "answer": "..."}

Each call becomes a planner turn deciding `caller`, the caller turn and the observation; the
answer the planner's conclusion. A record the schema refuses is a `schema_violation` reject
naming the JSON path; a call to a tool not in TOOLS is marked hallucinated, as umi's sources do.
A custom source's trajectories carry one of umi's source labels (here `openai_messages`, the
closest: a chat log with tool calls) and the format's own name in `meta.format`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.core import (
    CallerTurn, ConclusionTurn, ObservationTurn, PlannerTurn, ToolSpec, Trajectory, UserTurn, make_instruction_id,
    make_trajectory_id, outcome_of,
)
from umi_data.sources import register_source
from umi_data.sources.base import RecordContext, Source

NAME = "helpdesk-log"
TOOLS = [
    ToolSpec(name="lookup_order", description="an order's status by its number",
             parameters={"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}),
    ToolSpec(name="refund", description="refund an order",
             parameters={"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}),
]
#: The raw format's JSON Schema: `$defs/record` is one record (what every umi source schema has).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "call": {"type": "object", "required": ["tool", "args", "result"],
                 "properties": {"tool": {"type": "string", "minLength": 1}, "args": {"type": "object"}, "result": {"type": "string"}}},
        "record": {"type": "object", "required": ["question", "calls", "answer"],
                   "properties": {"question": {"type": "string", "minLength": 1},
                                  "calls": {"type": "array", "items": {"$ref": "#/$defs/call"}},
                                  "answer": {"type": "string"}}},
    },
    "$ref": "#/$defs/record",
}


def convert(record: dict[str, Any], ctx: RecordContext) -> Trajectory:
    """One schema-valid help-desk record as a trajectory (module level: worker processes import it)."""
    known = {tool.name for tool in TOOLS}
    turns: list[Any] = [UserTurn(content=record["question"])]
    for call in record["calls"]:
        turns.append(PlannerTurn(thought=f"I should call {call['tool']}.", next="caller"))
        turns.append(CallerTurn(name=call["tool"], arguments=call["args"], raw_arguments=json.dumps(call["args"]),
                                hallucinated=call["tool"] not in known))
        turns.append(ObservationTurn(response=call["result"]))
    turns.append(PlannerTurn(thought="I can answer now.", next="conclusion"))
    turns.append(ConclusionTurn(answer=record["answer"]))
    return Trajectory(
        id=make_trajectory_id(NAME, ctx.file.name, ctx.locator, ctx.content_hash), source="openai_messages",
        instruction=record["question"], instruction_id=make_instruction_id(record["question"]), tools=TOOLS,
        turns=turns, outcome=outcome_of(turns), meta={"format": NAME},
    )


SOURCE = Source(name=NAME, schema="helpdesk-log.schema.json", records_per_file="records", convert=convert,
                suffixes=(".jsonl", ".json"))

RECORDS = [
    {"question": "Where is order 1042?", "calls": [{"tool": "lookup_order", "args": {"order": "1042"}, "result": "shipped on May 2"}],
     "answer": "Order 1042 shipped on May 2."},
    {"question": "Please refund order 77.", "calls": [{"tool": "lookup_order", "args": {"order": "77"}, "result": "delivered"},
                                                      {"tool": "refund", "args": {"order": "77"}, "result": "refund issued"}],
     "answer": "Order 77 has been refunded."},
    {"question": "Cancel my subscription.", "calls": [{"tool": "cancel_subscription", "args": {}, "result": "no such tool"}],
     "answer": "I could not cancel it."},
    {"question": "What is my balance?", "calls": "none", "answer": "?"},  # refused by the schema: a counted reject
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the log and corpus/")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "helpdesk.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))

    register_source(SOURCE, "help-desk logs (question, calls with results, answer; one JSON object per line)", SCHEMA)
    result = build_corpus(BuildConfig(source=NAME, inputs=[str(log)]), args.out / "corpus", progress=False, force=True)
    counts = result.manifest["counts"]
    print(f"{NAME}: {counts['accepted']} trajectories, {counts['rejected']} rejected -> {result.out}")
    for reject in result.rejects:
        print(f"  reject {reject.locator}: {reject.reason} ({reject.detail})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
