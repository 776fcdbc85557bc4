"""A live run killed mid-way (SIGKILL, out of memory, power loss) loses none of the episodes it
logged: `umi_agent.run` appends each finished episode to `OUT/<name>/episodes.json` and closes the
array last, and the agent-run source reads an array never closed as its complete episodes plus,
when the log stops inside one, one `truncated_json` reject at `$[N]` (umi_data/sources/agent_run.py,
docs/guarantees.md). Every other input that is not JSON is still rejected whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from umi_agent import run as live
from umi_agent.backends import ScriptedModel
from umi_agent.loop import MultiAgent, run_episode
from umi_agent.tools import ToolRegistry
from umi_data.core import Reject, RejectReason, Trajectory
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile

ROOT = Path(__file__).resolve().parents[1]
# Non-ASCII (a kill can cut a UTF-8 sequence), quotes, a backslash and a newline (escapes to cut).
ANSWER = 'Il fait "beau" à Lyon\\Rhône,\n晴れ.'


def answering_agent() -> MultiAgent:
    planner = ScriptedModel(lambda prompt: "Je sais.\n Next: conclusion.")
    return MultiAgent(planner, ScriptedModel([]), ScriptedModel(lambda prompt: ANSWER), max_steps=2)


def small_log(path: Path, n: int = 3) -> list[dict[str, Any]]:
    """`n` short episodes written by the real writer; the documents it wrote."""
    with live.EpisodeLog(path) as log:
        for index in range(n):
            episode = run_episode(answering_agent(), f"Météo n°{index} ?", ToolRegistry([]), episode_id=f"e{index}")
            log.add(index, episode)
    return json.loads(path.read_bytes())


def read(path: Path, source: str = "agent-run") -> tuple[list[Trajectory], list[Reject]]:
    items = list(read_source(get_source(source), [InputFile(path, path.name)]))
    return [i for i in items if isinstance(i, Trajectory)], [i for i in items if isinstance(i, Reject)]


# --- every prefix of a log ----------------------------------------------------------------


def test_every_prefix_of_a_log_keeps_its_complete_episodes(tmp_path: Path) -> None:
    """Cut at every byte (inside the `[`, a separator, a string, an escape, a UTF-8 sequence, the
    closing `]`): the episodes wholly written are read, the one cut is one reject, nothing raises."""
    documents = small_log(tmp_path / "episodes.json")
    data = (tmp_path / "episodes.json").read_bytes()
    spans = [(start, start + len(body)) for body in map(orjson.dumps, documents) for start in [data.index(body)]]
    assert data.endswith(b"]\n") and len(spans) == 3 and any(b >= 0x80 for b in data)
    cut = tmp_path / "cut.json"
    for size in range(len(data) + 1):
        cut.write_bytes(data[:size])
        trajectories, rejects = read(cut)
        complete = sum(end <= size for _, end in spans)
        assert [t.id for t in trajectories] == [d["id"] for d in documents[:complete]], size
        inside = [index for index, (start, end) in enumerate(spans) if start < size < end]
        if size == 0:
            assert [r.reason for r in rejects] == [RejectReason.EMPTY_FILE]
        elif inside:
            assert [(r.reason, r.locator) for r in rejects] == [(RejectReason.TRUNCATED_JSON, f"$[{inside[0]}]")], size
            assert "array was never closed" in rejects[0].detail
        else:
            assert rejects == [], size


def test_a_cut_log_builds_the_same_trajectories_as_the_closed_one(tmp_path: Path) -> None:
    from umi_data.building.build import BuildConfig, build_corpus

    documents = small_log(tmp_path / "in" / "episodes.json")
    data = (tmp_path / "in" / "episodes.json").read_bytes()
    (tmp_path / "cut" / "episodes.json").parent.mkdir()
    (tmp_path / "cut" / "episodes.json").write_bytes(data[: data.index(orjson.dumps(documents[2])) + 40])
    built = {name: build_corpus(BuildConfig(source="agent-run", inputs=[str(tmp_path / name)]), tmp_path / f"out-{name}",
                                progress=False) for name in ("in", "cut")}
    assert built["cut"].manifest["counts"]["rejected_by_reason"] == {"truncated_json": 1}
    rows = {name: pq.read_table(tmp_path / f"out-{name}" / "trajectories.parquet").to_pylist() for name in built}
    assert rows["cut"] == rows["in"][:2]


# --- what is still rejected whole -----------------------------------------------------------


@pytest.mark.parametrize("name, tail, reason", [
    ("garbage after an episode", b",\n}{", RejectReason.INVALID_JSON),
    ("a second array", b"]\n[", RejectReason.INVALID_JSON),
    ("bytes that are not UTF-8", b",\n{\"id\": \"\xff\xfe\"", RejectReason.NOT_UTF8),
    ("NaN after a cut", b',\n{"id": NaN, "x": "', RejectReason.INVALID_JSON),
])
def test_a_log_broken_otherwise_than_cut_is_rejected_whole(name: str, tail: bytes, reason: RejectReason, tmp_path: Path) -> None:
    small_log(tmp_path / "episodes.json", 1)
    data = (tmp_path / "episodes.json").read_bytes().removesuffix(b"\n]\n")
    (tmp_path / "episodes.json").write_bytes(data + tail)
    trajectories, rejects = read(tmp_path / "episodes.json")
    assert trajectories == [] and [(r.reason, r.locator) for r in rejects] == [(reason, "$")]


@pytest.mark.parametrize("content", [b"not json at all", b'{"id": "x", "turns": [', b"  \n", b"\xef\xbb\xbf[\n"])
def test_what_is_not_an_unclosed_array_reads_as_before(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "episodes.json").write_bytes(content)
    trajectories, rejects = read(tmp_path / "episodes.json")
    expected = {b"not json at all": [RejectReason.INVALID_JSON], b'{"id": "x", "turns": [': [RejectReason.TRUNCATED_JSON],
                b"  \n": [RejectReason.EMPTY_FILE], b"\xef\xbb\xbf[\n": []}[content]  # a log killed before its first episode
    assert trajectories == [] and [r.reason for r in rejects] == expected


def test_a_salvaged_episode_is_checked_like_any_record(tmp_path: Path) -> None:
    """The salvaged records come from Python's json, which lets a lone surrogate escape through:
    that episode alone is `invalid_text`."""
    documents = small_log(tmp_path / "episodes.json", 2)
    data = (tmp_path / "episodes.json").read_bytes().removesuffix(b"\n]\n")
    (tmp_path / "episodes.json").write_bytes(data.replace(b"Lyon", b"Ly\\ud800on", 1) + b",\n{")
    trajectories, rejects = read(tmp_path / "episodes.json")
    assert [t.id for t in trajectories] == [documents[1]["id"]]
    assert [(r.reason, r.locator) for r in rejects] == [(RejectReason.INVALID_TEXT, "$[0]"), (RejectReason.TRUNCATED_JSON, "$[2]")]


@pytest.mark.parametrize("source", ["alpha-umi-stage1", "alpha-umi-stage2", "toolalpaca"])
def test_other_list_sources_still_reject_an_unclosed_array_whole(source: str, tmp_path: Path) -> None:
    """Only the agent-run log, whose writer appends, is read when unclosed."""
    (tmp_path / "x.json").write_text('[{"a": 1},\n{"b": 2},\n{"c"')
    trajectories, rejects = read(tmp_path / "x.json", source)
    assert trajectories == [] and [(r.reason, r.locator) for r in rejects] == [(RejectReason.TRUNCATED_JSON, "$")]


# --- a real kill ----------------------------------------------------------------------------

# `python -m umi_agent.run` on a scripted agent (as in tests/test_agent_outputs.py), in its own
# process: it touches READY and waits for its SIGKILL once two episodes are logged, either before
# playing the third ("between") or halfway through writing it ("mid-write": the state a kill
# between two write() calls of one large episode leaves).
KILLED_RUN = r"""
import sys, time
from pathlib import Path
from umi_agent import run as live
from umi_agent.backends import ScriptedModel
from umi_agent.loop import MultiAgent

tasks, out, ready, mode = sys.argv[1:5]
played = []

def planner(prompt):
    played.append(prompt)
    if mode == "between" and len(played) == 3:
        Path(ready).touch()
        time.sleep(600)
    return "Je sais.\n Next: conclusion."

class StallingHandle:
    def __init__(self, handle):
        self.handle, self.writes = handle, 0
    def write(self, data):
        self.writes += 1
        if mode == "mid-write" and self.writes == 3:
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            Path(ready).touch()
            time.sleep(600)
        return self.handle.write(data)
    def __getattr__(self, name):
        return getattr(self.handle, name)

opened = live.EpisodeLog.__init__
def stalling_init(self, path):
    opened(self, path)
    self._handle = StallingHandle(self._handle)
live.EpisodeLog.__init__ = stalling_init
live.agent_from_run = lambda run, steps, tokens: MultiAgent(
    ScriptedModel(planner), ScriptedModel([]), ScriptedModel(lambda prompt: "Il fait beau à Lyon."), max_steps=2)
sys.exit(live.main(["--run", "agent", "--tasks", tasks, "--out", out, "--quiet"]))
"""


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umi_data.synth.world import write_synthetic

    out = tmp_path_factory.mktemp("world")
    write_synthetic(out, 4, seed=0)
    return out / "tasks.jsonl"


def kill_a_run(tasks: Path, out: Path, mode: str) -> Path:
    """Start the run, SIGKILL it once it is waiting; its episodes.json."""
    ready = out.parent / f"{out.name}.ready"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tasks), str(out), str(ready), mode], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run stopped or stalled before its third episode: {process.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    return out / "agent" / "episodes.json"


def build_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "umi_data", "build", "agent-run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("mode, rejected", [("between", 0), ("mid-write", 1)])
def test_a_killed_run_keeps_the_episodes_it_logged(tasks: Path, tmp_path: Path, mode: str, rejected: int, monkeypatch, capsys) -> None:
    log = kill_a_run(tasks, tmp_path / "live", mode)
    assert not log.read_bytes().rstrip().endswith(b"]") and not (tmp_path / "live" / "metrics.json").exists()

    proc = build_cli(str(log), "--out", str(tmp_path / "corpus"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"read {2 + rejected}, accepted 2" in proc.stdout
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert manifest["counts"]["rejected_by_reason"] == ({"truncated_json": 1} if rejected else {})
    rejects = [json.loads(line) for line in (tmp_path / "corpus" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["locator"], r["reason"]) for r in rejects] == [("$[2]", "truncated_json")] * rejected

    # The trajectories are those of the same run left to finish, in task order.
    monkeypatch.setattr(live, "agent_from_run", lambda run, steps, tokens: MultiAgent(
        ScriptedModel(lambda p: "Je sais.\n Next: conclusion."), ScriptedModel([]), ScriptedModel(lambda p: "Il fait beau à Lyon."), max_steps=2))
    assert live.main(["--run", "agent", "--tasks", str(tasks), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    ids = pq.read_table(tmp_path / "corpus" / "trajectories.parquet", columns=["id"]).column("id").to_pylist()
    assert ids == [e["id"] for e in json.loads((tmp_path / "whole" / "agent" / "episodes.json").read_bytes())[:2]]

    strict = build_cli(str(log), "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == (1 if rejected else 0) and "Traceback" not in strict.stderr
