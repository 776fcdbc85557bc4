"""Export → import gives the same trajectories: umi's chat exports (umi_data.exports.chat and
umi_data.exports.chat_formats, issue 25's export half) read back by the chat sources, over the
synthetic world, the ToolBench files and the Glaive demo.

Skipped while the export modules are absent (they are written on another branch); the fields
the export mapping declares not carried (a Finish answer's argument string, the DFS-prompt flag,
how a non-call thought was left empty) are left out of the comparison, and so is the raw
argument string for the formats that store arguments as an object.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_data.core import Reject, Trajectory
from umi_data.sources import discover_files, get_source, read_source
from umi_data.sources.base import InputFile

chat = pytest.importorskip("umi_data.exports.chat", reason="the chat export mapping (umi_data/exports/chat.py) is not on this branch")
chat_formats = pytest.importorskip("umi_data.exports.chat_formats", reason="the chat export formats are not on this branch")

IMPORTER = {"openai": "openai-messages", "trl-chat": "openai-messages", "llamafactory-sharegpt": "sharegpt-tools", "hermes": "hermes"}
NOT_CARRIED = {"conclusion": {"raw_arguments"}, "user": {"diversity_prompt"}}


def comparable(trajectory: Trajectory, exact_arguments: bool) -> tuple:
    turns = []
    for turn in trajectory.turns:
        leave_out = set(NOT_CARRIED.get(turn.role, ()))
        if turn.role == "planner" and (turn.next != "caller" or not exact_arguments):
            leave_out.add("empty_thought")
        if turn.role == "caller" and not exact_arguments:
            leave_out.add("raw_arguments")
        turns.append(turn.model_dump(exclude=leave_out))
    return trajectory.instruction, [tool.model_dump() for tool in trajectory.tools], turns


def round_trip(items: list, fmt: str, tmp_path: Path) -> tuple[int, list]:
    """(exported count, [(original, read back)]) for one format."""
    kept, lines = [], []
    for trajectory in items:
        try:
            record = chat_formats.RECORDS[fmt](chat.to_chat_messages(trajectory))
        except chat.ChatReject:
            continue
        kept.append(trajectory)
        lines.append(json.dumps(record, ensure_ascii=False))
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    back = list(read_source(get_source(IMPORTER[fmt]), [InputFile(path, path.name)]))
    return len(kept), list(zip(kept, back))


def check(items: list, tmp_path: Path) -> dict[str, int]:
    exported = {}
    for fmt in IMPORTER:
        count, pairs = round_trip(items, fmt, tmp_path)
        assert len(pairs) == count
        for original, back in pairs:
            assert not isinstance(back, Reject), f"{fmt}: {original.id} read back as a reject: {back.detail}"
            exact = fmt == "openai"
            assert comparable(back, exact) == comparable(original, exact), f"{fmt}: {original.id} changed"
        exported[fmt] = count
    return exported


def trajectories(source: str, path: Path) -> list:
    return [i for i in read_source(get_source(source), discover_files([path], get_source(source).suffixes)) if isinstance(i, Trajectory)]


def test_synthetic_world_round_trips(tmp_path: Path) -> None:
    from umi_data.__main__ import main

    assert main(["synth", "--n", "60", "--out", str(tmp_path / "synth"), "--quiet"]) == 0
    exported = check(trajectories("toolbench", tmp_path / "synth" / "answer"), tmp_path)
    assert exported["openai"] > 40


def test_toolbench_files_round_trip(toolbench_answer: Path, tmp_path: Path) -> None:
    assert check(trajectories("toolbench", toolbench_answer), tmp_path)["openai"] == 9  # the 4 give-ups have no chat form


def test_glaive_round_trips(shared_data: Path, tmp_path: Path) -> None:
    exported = check(trajectories("sharegpt-tools", shared_data / "llamafactory" / "glaive_toolcall_en_demo.json"), tmp_path)
    assert exported == {fmt: 300 for fmt in IMPORTER}


def test_fixture_variants_round_trip(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "chat"
    own = {"openai-messages": "openai_", "sharegpt-tools": ("sharegpt_", "glaive_", "toolace_"), "hermes": "hermes_"}
    items = [t for source, prefix in own.items() for path in sorted(fixtures.iterdir()) if path.name.startswith(prefix)
             for t in trajectories(source, path)]
    assert check(items, tmp_path)["openai"] > 10
