"""The fast schema check (jsonschema-rs) must accept exactly what the full jsonschema validator
accepts, or the build would keep records the schema refuses (or, the other way, pay the slow
walk for records it accepts)."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from umi_data.sources.base import _fast_check, _validator
from umi_data.synth import generate

REPO = Path(__file__).resolve().parents[1]
TOOLALPACA = REPO / "tests" / "fixtures" / "toolalpaca" / "train.json"
SAMPLES = sorted((REPO / "umi_data" / "samples" / "toolbench" / "answer").rglob("*.json"))
REPLACEMENTS = [None, 0, 1.0, 1.5, -(2**70), "", "x", "\ud800", True, False, [], {}, [1], {"a": 1}]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            found += paths(child, prefix + (index,))
    return found


def mutate(record: Any, rng: random.Random) -> Any:
    record = copy.deepcopy(record)
    path = rng.choice(paths(record)[1:])
    parent = record
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and rng.random() < 0.4:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(REPLACEMENTS)
    return record


def toolbench_records() -> list[Any]:
    return [orjson.loads(p.read_bytes()) for p in SAMPLES] + [item.record for item in generate(20, seed=5)]


def toolalpaca_entries() -> list[Any]:
    return orjson.loads(TOOLALPACA.read_bytes())


def toolalpaca_runs() -> list[Any]:
    return [run for entry in toolalpaca_entries() for run in entry["Instances"] if isinstance(run, dict)]


CASES = [
    ("toolbench_answer.schema.json", "record", toolbench_records),
    ("toolalpaca.schema.json", "api", toolalpaca_entries),  # prefixItems, allOf, anyOf, propertyNames
    ("toolalpaca.schema.json", "run", toolalpaca_runs),
    ("toolalpaca.schema.json", "file", lambda: [toolalpaca_entries()]),
]


@pytest.mark.parametrize(("schema", "part", "records"), CASES, ids=[f"{s}:{p}" for s, p, _ in CASES])
def test_fast_check_agrees_with_jsonschema(schema: str, part: str, records: Any) -> None:
    fast = _fast_check(schema, part)
    records = records()
    rng = random.Random(0)
    disagreements, refused = [], 0
    for _ in range(600):
        candidate = mutate(rng.choice(records), rng)
        full = not any(True for _ in _validator(schema, part).iter_errors(candidate))
        refused += not full
        if fast(candidate) != full:
            disagreements.append(candidate)
    assert not disagreements and refused > 60  # the mutations do break the schema often

