"""Property: over generated ToolBench answer files (well-formed, odd and broken: null, empty and
missing contents, Finish arguments that are not JSON, observations that are not envelopes, lone
surrogate escapes, NaN, huge integers, tools without descriptions, empty train_messages) and
α-UMi stage-2 records (any speakers in any order), a build in either mode never raises, reads = accepted + rejected, and every accepted row is a
document of schemas/trajectory.schema.json.

The data card (matplotlib figures, the slow part of a build) is left out: it reads only the
manifest and the written corpora, which the property already covers.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import umi_data.building.build
import umi_data.building.manifest
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.core import HALLUCINATED_NAME
from umi_data.corpus.rows import row_to_document

REPO = Path(__file__).resolve().parents[1]
TRAJECTORY_SCHEMA = json.loads((REPO / "schemas" / "trajectory.schema.json").read_text("utf-8"))
TOOL = {"name": "weather_for_meteo", "description": "Weather.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "city"}}}}
FINISH = {"name": "Finish", "description": "Finish.", "parameters": {"type": "object", "properties": {}}}
ABSENT = object()

# Pieces that make the parsers' edge cases likely: JSON syntax, the keys the official scripts
# search for, escapes (lone surrogates among them), numbers JSON cannot hold exactly.
FRAGMENTS = [
    '{', '}', '[', ']', '"', ',', ': ', '\\', '\\n', '\\"', '\\ud800', '\\udc00', '\\ud83d\\ude00', 'NaN', 'Infinity',
    '123456789012345678901234567890', '"response": ', '"response":', '"final_answer": ', '"return_type": ',
    '"give_answer"', 'give_up_and_restart', '"error": ""', '...', 'none', 'Next: give up.', 'é', '\n',
]
text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=8).map("".join)
content = st.one_of(st.none(), st.just(""), text, st.just(ABSENT))


def _envelope(error: str, response: Any) -> str:
    return json.dumps({"error": error, "response": response})


#: Real observations that broke builds or parity (FORMATS §7), drawn often on purpose.
NASTY_OBSERVATIONS = [
    '{"error": "", "response": "caf\\ud800"}', '{"error": "", "response": {"sky": "clear"}}', '["a", 1]', '"text"',
    '{"error": "", "response": "cut \\ud83d', 'Rate limit exceeded', '{"error": "", "response": NaN}', '{"response": 1e400}',
]
observation_content = st.one_of(
    st.sampled_from(NASTY_OBSERVATIONS),
    text,
    st.builds(_envelope, text, st.one_of(text, st.dictionaries(text, text, max_size=2), st.lists(text, max_size=2))),
    st.builds(lambda e, r: _envelope(e, r)[:30] + "...", text, text),
)
finish_arguments = st.one_of(
    st.sampled_from(['{"return_type": "give_answer", "final_answer": "\\udc00"', '{"final_answer": "x",}', '{"return_type": "give_answer", "final_answer": NaN}']),
    text,
    st.builds(lambda a: json.dumps({"return_type": "give_answer", "final_answer": a}), st.one_of(text, st.integers(), st.none())),
    st.just('{"return_type": "give_up_and_restart"}'),
    st.builds(lambda a: '{"return_type": "give_answer", "final_answer": "' + a, text),
)


def _message(role: str, body: Any, call: dict[str, str] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role}
    if body is not ABSENT:
        message["content"] = body
    if call is not None:
        message["function_call"] = call
    return message


call = st.one_of(
    st.none(),
    st.builds(
        lambda n, a: {"name": n, "arguments": a},
        st.sampled_from([TOOL["name"], HALLUCINATED_NAME, "nope"]),
        st.one_of(st.sampled_from(['{"city": "\\ud800"}', '{"n": 123456789012345678901234567890}', '{"n": NaN}']), text),
    ),
    st.builds(lambda a: {"name": "Finish", "arguments": a}, finish_arguments),
)
message = st.one_of(
    st.builds(lambda c, f: _message("assistant", c, f), content, call),
    st.builds(lambda c: {**_message("function", c), "name": TOOL["name"]}, observation_content),
    st.builds(lambda c: {**_message("user", c), "valid": False}, text),
    st.builds(lambda c: _message("user", c), content),  # null / absent user content: malformed
)


# Well-ordered steps (a call and its result, then a Finish), so that most records reach the
# writers; `message` adds arbitrary ones in between.
step = st.builds(
    lambda c, f, o: [_message("assistant", c, f), {**_message("function", o), "name": f["name"]}],
    content, call.filter(lambda f: f is not None), observation_content,
)
finish = st.builds(lambda c, a: [_message("assistant", c, {"name": "Finish", "arguments": a})], content, finish_arguments)


@st.composite
def answer_files(draw: st.DrawFn) -> dict[str, Any]:
    query = draw(text) + ("\ud800" if draw(st.integers(0, 9)) == 0 else "")  # sometimes a lone surrogate in the file itself
    body: list[dict[str, Any]] = []
    parts = st.one_of(step, step, step, finish, message.map(lambda m: [m]))
    for part in draw(st.lists(parts, min_size=1, max_size=5)):
        body.extend(part)
    chain = [{"role": "system", "content": "AutoGPT"}, {"role": "user", "content": f"\n{query}\nBegin!\n"}, *body]
    tool = dict(TOOL)
    if draw(st.integers(0, 9)) == 0:
        del tool["description"]
    generation = {
        "valid_data": draw(st.integers(0, 9)) > 0,
        "query": query,
        "function": [tool, FINISH],
        "train_messages": [] if draw(st.integers(0, 9)) == 0 else [chain],
    }
    return {"answer_generation": generation}


def _turn(speaker: str, value: str) -> dict[str, str]:
    return {"from": speaker, "value": value}


stage2_step = st.builds(
    lambda t, a, o: [_turn("assistant", t + "\n Next: caller."), _turn("caller", "Action: f\nAction Input: " + a), _turn("observation", o)],
    text, text, text,
)
stage2_end = st.one_of(
    st.builds(lambda t, a: [_turn("assistant", t + " Next: conclusion."), _turn("conclusion", a)], text, text),
    st.builds(lambda t: [_turn("assistant", t + " Next: give up.")], text),
    st.builds(lambda t, n: [_turn("assistant", t + n)], text, st.sampled_from([" Next: caller.", " Next: conclusion.", ""])),  # cut off
    st.builds(lambda f, v: [_turn(f, v)], st.sampled_from(["user", "assistant", "caller", "observation", "conclusion"]), text),
)


@st.composite
def stage2_record(draw: st.DrawFn) -> dict[str, Any]:
    query = draw(text)
    turns = [_turn("user", query)]
    for part in draw(st.lists(st.one_of(stage2_step, stage2_step, stage2_end), max_size=4)):
        turns.extend(part)
    return {"tools": [], "instruction": query, "conversations": turns}


def _write(root: Path, answers: list[dict[str, Any]], junk: bytes | None) -> int:
    folder = root / "G1_answer"
    folder.mkdir(parents=True)
    for index, answer in enumerate(answers):
        (folder / f"{index}_gen.json").write_text(json.dumps(answer), encoding="utf-8")  # lone surrogates become \ud800
    if junk is not None:
        (folder / "99_junk.json").write_bytes(junk)
    return len(answers) + (junk is not None)


@pytest.fixture(autouse=True)
def _no_card(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(umi_data.building.manifest, "write_card", lambda out, manifest, lengths=None, summary=None: {})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    answers=st.lists(answer_files(), min_size=1, max_size=5),
    junk=st.one_of(st.none(), st.binary(max_size=40)),
    stage2=st.lists(stage2_record(), min_size=1, max_size=4),
)
def test_build_never_raises_and_keeps_count(answers: list[dict[str, Any]], junk: bytes | None, stage2: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = _write(root / "in", answers, junk)
        (root / "stage2.json").write_text(json.dumps(stage2), encoding="utf-8")
        inputs = [("toolbench", root / "in", files), ("alpha-umi-stage2", root / "stage2.json", len(stage2))]
        for (source, path, read), compat in itertools.product(inputs, (None, "alpha-umi")):
            out = root / f"out-{source}-{compat}"
            manifest = build_corpus(BuildConfig(source=source, inputs=[str(path)], compat=compat), out, progress=False).manifest
            counts = manifest["counts"]
            assert counts["read"] == read == counts["accepted"] + counts["rejected"]
            assert sum(counts["outcomes"].values()) == counts["accepted"]
            rows = pq.read_table(out / "trajectories.parquet").to_pylist()
            assert len(rows) == counts["accepted"]
            for row in rows:
                jsonschema.validate(row_to_document(row), TRAJECTORY_SCHEMA)
            assert len((out / "rejects.jsonl").read_text("utf-8").splitlines()) == counts["rejected"]
