"""The fast schema check (fastjsonschema) must accept exactly what the full jsonschema validator
accepts, or the build would keep records the schema refuses."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest

from umi_data.sources.base import _fast_check, _validator
from umi_data.synth import generate

REPO = Path(__file__).resolve().parents[1]
SAMPLES = sorted((REPO / "umi_data" / "samples" / "toolbench" / "answer").rglob("*.json"))
REPLACEMENTS = [None, 0, 1.5, "", "x", True, [], {}, [1], {"a": 1}]


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


def accepts(fast: Any, value: Any) -> bool:
    try:
        fast(value)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


@pytest.mark.parametrize("schema", ["toolbench_answer.schema.json"])
def test_fast_check_agrees_with_jsonschema(schema: str) -> None:
    fast = _fast_check(schema, "record")
    assert fast is not None
    records = [orjson.loads(p.read_bytes()) for p in SAMPLES] + [item.record for item in generate(20, seed=5)]
    rng = random.Random(0)
    disagreements, refused = [], 0
    for _ in range(600):
        candidate = mutate(rng.choice(records), rng)
        full = not any(True for _ in _validator(schema, "record").iter_errors(candidate))
        refused += not full
        if accepts(fast, candidate) != full:
            disagreements.append(candidate)
    assert not disagreements and refused > 100  # the mutations do break the schema often


def test_schemas_with_other_keywords_get_no_fast_path() -> None:
    assert _fast_check("toolalpaca.schema.json", "record") is None  # uses prefixItems
