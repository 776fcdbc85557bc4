"""What a new user trips on in the first hour (issue 16): loading a corpus without a config name,
the data-side demo's output directory, the step runner behind `make demo`, the lock, and the
README's first lines and tables."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import datasets
import pytest

from umi_agent.steps import Step, StepFailed, run_steps, timing_table
from umi_data.__main__ import DEMO_OUT, main
from umi_data.sources import SOURCES
from umi_train.testing import sample_answer_dir

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = {page.name: page.read_text() for page in (REPO / "docs").glob("*.md")}


def test_load_dataset_without_a_config_name_gives_the_trajectories(tmp_path: Path) -> None:
    assert main(["build", "toolbench", str(sample_answer_dir()), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    loaded = datasets.load_dataset(str(tmp_path / "c"), split="train")
    assert "turns" in loaded.column_names and len(loaded) == len(datasets.load_dataset(str(tmp_path / "c"), "trajectories", split="train"))
    assert len(datasets.load_dataset(str(tmp_path / "c"), "planner", split="train")) > 0  # the other configs still load by name


def test_the_data_side_demo_writes_outside_what_make_demo_wipes() -> None:
    assert DEMO_OUT.parts[0] != "demo-out"


def test_steps_stream_time_and_skip(tmp_path: Path) -> None:
    marker = tmp_path / "done.txt"
    script = f"import sys, pathlib; print('first line', flush=True); print('to stderr', file=sys.stderr); pathlib.Path({str(marker)!r}).write_text('x')"
    out = io.StringIO()
    results = run_steps([Step("1. write the marker", (sys.executable, "-c", script), marker)], out)
    text = out.getvalue()
    assert "== 1. write the marker" in text and "first line" in text and "to stderr" in text and not results[0].skipped
    again = io.StringIO()
    assert run_steps([Step("1. write the marker", (sys.executable, "-c", "raise SystemExit(3)"), marker)], again)[0].skipped
    assert "skipped" in again.getvalue() and "skipped" in timing_table(results + run_steps([Step("x", ("true",), marker)], io.StringIO()))
    with pytest.raises(StepFailed, match="exit 3"):
        run_steps([Step("2. fail", (sys.executable, "-c", "raise SystemExit(3)"))], io.StringIO())


def test_steps_show_output_before_the_command_ends(tmp_path: Path) -> None:
    """A line is shown while its command still runs (the child waits for a file the reader
    creates once the line has arrived): streaming, not captured output printed at the end."""
    go = tmp_path / "go"
    script = (f"import pathlib, time; print('started', flush=True)\n"
              f"for _ in range(600):\n    time.sleep(0.05)\n    if pathlib.Path({str(go)!r}).exists(): break\n"
              f"else:\n    raise SystemExit('the runner did not show the first line while the command ran')")

    class Reader(io.StringIO):
        def write(self, text: str) -> int:
            if "started" in text:
                go.write_text("")
            return super().write(text)

    run_steps([Step("wait", (sys.executable, "-c", script))], Reader())


def test_readme_top_explains_the_two_commands_and_the_sources() -> None:
    """The README's first lines say what umi is and show the two commands; the pages it links
    to hold the source table and the set-up (the lock, ../shared)."""
    head = README.split("```", 1)[0]
    assert head.startswith("# umi") and "make test" in README.split("```")[1] and len(head.split()) > 20
    assert "../shared" in README and "requirements.lock" in README
    assert "](docs/data.md)" in README and "](docs/setup.md)" in README
    data, setup = DOCS["data.md"], DOCS["setup.md"]
    assert [name for name in SOURCES if f"| `{name}` |" not in data] == []  # the source table lists every source
    assert "source `synthetic`" not in data
    assert "../shared" in setup and "requirements.lock" in setup and "make lock" in setup


def test_progress_lines_count_completed_items_across_threads(capsys: pytest.CaptureFixture) -> None:
    from umi_agent.backends import ordered_map
    from umi_data.plumbing.cli import Progress

    progress = Progress(20, "items", prog="p")
    assert ordered_map(progress.wrap(lambda x: x * 2), range(20), concurrency=4) == [x * 2 for x in range(20)]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1] for line in lines] == [f"{n}/20" for n in range(2, 21, 2)]
    Progress(3, "items", prog="p", quiet=True).wrap(str)(1)
    assert capsys.readouterr().out == ""
