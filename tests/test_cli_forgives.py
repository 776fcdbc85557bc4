"""The command line a newcomer meets in the first hour: no option is abbreviated, a typo is
reported by the subcommand that got it with the closest option suggested, every message names
the command as its console script spells it, every entry point is reachable through a console
script, Ctrl-C is one line and exit 130 (the rerun says what it found), held-out tasks are one
command, and errors about a wrong input file name the command that writes the right one."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from umi_data.plumbing.cli import MODULE_ONLY, SCRIPTS, Parser, program

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def entry_point_modules() -> list[str]:
    """Every module of the three packages that runs as `python -m MODULE`."""
    found = []
    for path in sorted(REPO.glob("umi_*/**/*.py")):
        if 'if __name__ == "__main__":' in path.read_text():
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found.append(module.removesuffix(".__main__"))
    return found


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser, *(p for action in subs for sub in action.choices.values() for p in every_parser(sub))]


def test_program_names_a_command_as_its_console_script() -> None:
    assert program("umi_train.sft") == program("python -m umi_train.sft") == "umi-train sft"
    assert program("python -m umi_data build") == program("umi_data build") == "umi-data build"
    assert program("umi_agent") == "umi-agent" and program("umi_agent.reproduce") == "umi-agent reproduce"
    assert program("umi_data.data_cards") == "python -m umi_data.data_cards" and program("other") == "other"


@pytest.mark.parametrize("argv, error", [
    (["umi_data", "build", "toolbench", "x", "--ou", "y"], "umi-data build: error: unrecognized arguments: --ou; did you mean --out?"),
    (["umi_data", "export", "c", "--variant", "multi-task", "--out", "o", "--form", "trl"],
     "umi-data export: error: unrecognized arguments: --form; did you mean --format?"),
    (["umi_data", "synth", "--n", "3", "--out=x", "--sed", "2"], "umi-data synth: error: unrecognized arguments: --sed; did you mean --seed?"),
    (["umi_train.sft", "--corpus", "c", "--modle", "m"], "umi-train sft: error: unrecognized arguments: --modle; did you mean --model?"),
    (["umi_train", "glpft", "--varaint", "reuse"], "umi-train glpft: error: unrecognized arguments: --varaint; did you mean --variant?"),
    (["umi_agent.predict", "--tes", "t.json", "--out", "p.json"], "umi-agent predict: error: unrecognized arguments: --tes; did you mean --test?"),
    (["umi_data", "biuld"], "umi-data: error: argument COMMAND: invalid choice: 'biuld' (choose from"),
    (["umi_train", "sfft"], "umi-train: error: argument COMMAND: invalid choice: 'sfft'"),
    (["umi_agent", "reproduce", "--scal", "tiny"], "umi-agent reproduce: error: unrecognized arguments: --scal; did you mean --scale?"),
])
def test_a_typo_is_refused_by_its_subcommand_with_a_suggestion(argv: list[str], error: str, capsys: pytest.CaptureFixture) -> None:
    module, *args = argv
    main = importlib.import_module(module + (".__main__" if module in SCRIPTS else "")).main
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith(error) and len(err.strip().splitlines()) == 1, err
    if "invalid choice" in error:
        assert err.rstrip().endswith("; did you mean " + {"biuld": "build", "sfft": "sft"}[args[0]] + f"? (see {program(module)} --help)"), err


def test_no_parser_abbreviates() -> None:
    from umi_data.__main__ import _parser

    parsers = every_parser(_parser())
    assert len(parsers) > 8 and all(not p.allow_abbrev for p in parsers)
    assert not Parser(prog="x", allow_abbrev=True).allow_abbrev  # the shared parser does not let a command turn it back on
    args = _parser().parse_args(["query", "c", "-- a comment\nSELECT 1"])  # an SQL comment is not an unknown option
    assert args.args == ["c", "-- a comment\nSELECT 1"]


def test_one_program_name_when_started_as_a_module(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "umi_train.sft", "--corpus", str(tmp_path / "missing"), "--model", str(tmp_path),
                           "--role", "planner", "--out", str(tmp_path / "run")], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("umi-train sft: error: --corpus"), done.stderr
    done = subprocess.run([sys.executable, "-m", "umi_data", "build", "toolbench", "x"], capture_output=True, text=True, timeout=60)
    assert done.stderr.startswith("umi-data build: error: the following arguments are required: --out"), done.stderr


@pytest.mark.parametrize("module", entry_point_modules())
def test_every_entry_point_answers_help_through_its_console_script(module: str) -> None:
    """`umi-data X`, `umi-train X`, `umi-agent X` for every `python -m umi_*.X` (a subcommand of
    `umi-data` for its own commands); the module-only tools are named, with why, in MODULE_ONLY."""
    if module in MODULE_ONLY:
        return
    words = program(module).split(" ")
    script = BIN / words[0]
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e . installs it)")
    done = subprocess.run([str(script), *words[1:], "--help"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: {program(module)}"), done.stdout[:200] + done.stderr


def test_the_module_only_entry_points_exist() -> None:
    assert set(MODULE_ONLY) <= set(entry_point_modules())


# --- Ctrl-C --------------------------------------------------------------------------------------


def start_build(inputs: list[Path], out: Path, workers: int) -> subprocess.Popen:
    script = BIN / "umi-data"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "umi_data"]
    return subprocess.Popen([*command, "build", "toolbench", *map(str, inputs), "--out", str(out), "--workers", str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)


def open_when_read(fifo: Path, process: subprocess.Popen) -> int:
    """The write end of `fifo`, opened once the build opens it to read: the build is then
    mid-way, deterministically (every earlier file converted, the last one not yet read)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.005)
    raise AssertionError(f"the build ended (exit {process.poll()}) before it read {fifo}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umi_data.synth.world import write_synthetic

    out = tmp_path_factory.mktemp("world")
    write_synthetic(out, 1500, 0)
    return out


@pytest.mark.parametrize("earlier", [False, True], ids=["new-dir", "over-a-corpus"])
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_is_one_line_exit_130_and_the_rerun_reports_and_replaces(world: Path, tmp_path: Path, workers: int, earlier: bool) -> None:
    """A real SIGINT to the whole process group (a terminal's Ctrl-C) of a real build, stopped
    while it reads its last input (a FIFO that this test writes to only when it wants to).
    Into a new directory the interrupted build removes what it made; over an earlier corpus the
    partial output stays and the rerun says what it replaces."""
    out, fifo = tmp_path / "corpus", tmp_path / "last.json"
    if earlier:
        done = subprocess.run([sys.executable, "-m", "umi_data", "build", "toolbench", str(world / "answer"), "--out", str(out), "--quiet"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    os.mkfifo(fifo)
    build = start_build([world / "answer", fifo], out, workers)
    writer = open_when_read(fifo, build)
    os.killpg(build.pid, signal.SIGINT)
    time.sleep(0.5)
    os.close(writer)  # EOF, for a worker process (which ignores Ctrl-C) still reading it
    stdout, stderr = build.communicate(timeout=120)
    assert build.returncode == 130, stdout + stderr
    assert stderr.splitlines() == ["umi-data build: interrupted; rerun the same command to continue (or delete its output to start over)"]
    assert not (out / "manifest.json").exists()
    assert out.exists() == earlier  # a directory the build made is cleaned away whole
    left = sorted(entry for entry in os.listdir(out) if entry != ".umi-lock") if earlier else []
    assert not [entry for entry in left if entry.endswith(".tmp") or entry.startswith(".")], left
    rerun = start_build([world / "answer", fifo], out, workers)  # the lock was released: the rerun may write there
    os.close(open_when_read(fifo, rerun))  # this time the FIFO ends at once: an empty file, rejected
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    note = re.search(r"umi-data build: note: .* holds the partial output of an interrupted run \((.*)\); this run replaces it", stderr)
    assert (note.group(1).split(", ") if note else []) == left, stderr  # partial outputs: cleaned, or reported by the rerun
    assert ("global" in left and note is not None) == earlier  # over a corpus the rerun names what it replaces
    assert "accepted 1500" in stdout and "rejected 1" in stdout


def test_interrupt_of_a_module_main_is_one_line_too(tmp_path: Path) -> None:
    """A command whose main does not catch Ctrl-C (the interpreter's hook does)."""
    code = ("from umi_data.plumbing.cli import Parser; Parser(prog='umi_agent.run').parse_args([]); raise KeyboardInterrupt")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stderr.startswith("umi-agent run: interrupted;") and "Traceback" not in done.stderr


# --- held-out tasks and the files predict and run expect ---------------------------------------


def test_synth_heldout_shares_no_instruction_with_the_world(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from umi_data.__main__ import main

    out = tmp_path / "heldout"
    assert main(["synth", "--n", "12", "--heldout", str(world), "--out", str(out)]) == 0  # the world's own seed: new tasks only
    rows = [orjson.loads(line) for line in (out / "tasks.jsonl").read_bytes().splitlines()]
    seen = {orjson.loads(line)["instruction"] for line in (world / "tasks.jsonl").read_bytes().splitlines()}
    assert len(rows) == 12 and not {row["instruction"] for row in rows} & seen
    assert all((out / row["answer_file"]).is_file() for row in rows)
    assert main(["synth", "--n", "5", "--seed", "7", "--heldout", str(world / "tasks.jsonl"), "--out", str(out)]) == 0
    assert len(list((out / "answer").rglob("*.json"))) == 5  # the rerun's files only
    assert "held-out tasks sharing no instruction" in capsys.readouterr().out
    assert main(["synth", "--n", "5", "--heldout", str(tmp_path / "nowhere"), "--out", str(tmp_path / "h2")]) == 2
    assert capsys.readouterr().err.startswith("umi-data synth: error:")


def test_predict_and_run_name_the_command_that_writes_the_file_they_expect(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from umi_agent.jsonio import InputFileError
    from umi_agent.run import LiveRunError, read_tasks
    from umi_agent.static import load_samples
    from umi_data.building.build import BuildConfig, build_corpus

    with pytest.raises(InputFileError, match=r"umi-data build toolbench TASKS_DIR/answer --compat alpha-umi --out CORPUS"):
        load_samples(world / "tasks.jsonl")
    corpus = tmp_path / "heldout-corpus"
    build_corpus(BuildConfig(source="toolbench", inputs=[str(world / "answer")], compat="alpha-umi"), corpus, progress=False)
    assert len(load_samples(corpus)) > 1500  # the corpus directory itself is a static test set
    with pytest.raises(InputFileError, match="umi-data build"):
        load_samples(tmp_path)
    stage2 = corpus / "alpha_umi" / "raw_data_stage_2.json"
    with pytest.raises(LiveRunError, match="umi-data synth"):
        read_tasks(stage2)


# --- progress ------------------------------------------------------------------------------------


def test_a_piped_build_prints_progress_lines(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from umi_data.building import workers as part_workers
    from umi_data.__main__ import main

    monkeypatch.setattr(part_workers.ProgressLines, "SECONDS", 0.0)
    assert main(["build", "toolbench", str(world / "answer"), "--out", str(tmp_path / "c"), "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " files read (" in line]
    assert lines and lines[-1].startswith("umi-data build: 1,500 files read (")
    assert main(["build", "toolbench", str(world / "answer"), "--out", str(tmp_path / "d"), "--workers", "1", "--quiet"]) == 0
    assert " files read (" not in capsys.readouterr().out


@pytest.mark.parametrize("order", ["parse first", "import first"])
def test_no_third_party_bars_when_stderr_is_not_a_terminal(order: str) -> None:
    parse = "from umi_data.plumbing.cli import Parser; Parser(prog='umi_train.sft').parse_args([])"
    load = "import transformers.utils.logging as logging"
    code = ";".join([parse, load] if order == "parse first" else [load, parse]) + "; print(logging.is_progress_bar_enabled())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={k: v for k, v in ENV.items() if "PROGRESS" not in k and k != "TQDM_DISABLE"}, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_human_lines_round_the_loss() -> None:
    from umi_train.sft import summary_line

    record = {"training": {"steps": 3, "loss_history": [{"step": 1, "loss": 7.890377998352051}, {"step": 3, "loss": 8.00232}],
                           "final_eval_loss": 7.123456789}}
    assert summary_line(record, Path("r/run.json")) == "umi-train sft: 3 steps, loss 7.8904 -> 8.0023, eval loss 7.1235 -> r/run.json"


# --- validate is build without the writing --------------------------------------------------------


def build_reasons(answer: Path, out: Path) -> list[tuple[str, str]]:
    from umi_data.building.build import BuildConfig, build_corpus

    build_corpus(BuildConfig(source="toolbench", inputs=[str(answer)]), out, progress=False)
    rows = [orjson.loads(line) for line in (out / "rejects.jsonl").read_bytes().splitlines()]
    return sorted((Path(row["source_file"]).name, row["reason"]) for row in rows)


def validate_reasons(answer: Path) -> list[tuple[str, str]]:
    from umi_data.schema_docs import reject_counts, validate_files

    _, problems = validate_files("toolbench", [str(answer)])
    assert sum(reject_counts(problems).values()) == len(problems)
    return sorted((Path(p.file).name, p.message.split(":", 1)[0]) for p in problems)


def test_validate_and_build_agree_on_real_toolbench_files(toolbench_answer: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from umi_data.__main__ import main

    reasons = build_reasons(toolbench_answer, tmp_path / "c")
    assert [reason for _, reason in reasons] == ["invalid_data", "invalid_data"]
    assert validate_reasons(toolbench_answer) == reasons
    assert main(["validate", "toolbench", str(toolbench_answer)]) == 1
    assert capsys.readouterr().out.strip().endswith("2 with problems, 2 problem(s); build would reject 2 record(s) (invalid_data: 2)")


def test_validate_and_build_agree_on_synthetic_and_broken_files(world: Path, tmp_path: Path) -> None:
    import shutil

    answer = tmp_path / "answer"
    shutil.copytree(world / "answer" / "G1_answer", answer, ignore=lambda _, names: sorted(names)[40:])
    files = sorted(answer.iterdir())
    files[0].write_bytes(b'{"answer_generation": {"valid_data": false')  # not JSON
    record = orjson.loads(files[1].read_bytes())
    record["answer_generation"]["valid_data"] = False
    files[1].write_bytes(orjson.dumps(record))
    reasons = build_reasons(answer, tmp_path / "c")
    assert len(reasons) == 2 and validate_reasons(answer) == reasons


# --- what the neighbours' users expect ------------------------------------------------------------


def test_config_file_with_flags_overriding_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from umi_train.config import GLPFTConfig, SFTConfig, parse_config
    from umi_train.sft import comparable

    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tmp_path}\ncorpus: {tmp_path}\nrole: planner\nmax-steps: 200\nlearning_rate: 1.0e-3\ntarget_modules: [q_proj, v_proj]\n")
    parsed = parse_config(SFTConfig, ["--config", str(config), "--out", str(tmp_path / "run"), "--max-steps", "5"], "umi-train sft", "x")
    assert (parsed.max_steps, parsed.learning_rate, parsed.role, parsed.target_modules) == (5, 1e-3, "planner", ("q_proj", "v_proj"))
    assert comparable(parsed)["max_steps"] == 5 and comparable(parsed)["learning_rate"] == 1e-3  # what run.json records
    config.write_text(f"model: {tmp_path}\ncorpus: {tmp_path}\nvariant: reuse\nout: {tmp_path / 'g'}\nmax_steps: 7\n")
    glpft = parse_config(GLPFTConfig, ["--config", str(config)], "umi-train glpft", "x")  # required options from the file alone
    assert (glpft.variant, glpft.max_steps) == ("reuse", 7)
    from umi_agent.reproduce import parse_scale

    config.write_text(f"scale: tiny\nmax-steps: 2\nout: {tmp_path / 'rep'}\n")
    args, scale = parse_scale(["--config", str(config), "--max-steps", "3"])
    assert (args.out, args.scale, scale.max_steps, scale.model) == (tmp_path / "rep", "tiny", 3, "tiny")
    for text, error in (("max_step: 3\n", "max_step is not an option of this command; did you mean max_steps?"),
                        ("- 1\n", "expected a mapping of options"), ("a: [\n", "not YAML"), ("max_steps: 0\n", "--max-steps:")):
        config.write_text(text)
        with pytest.raises(SystemExit) as exit_info:
            parse_config(SFTConfig, ["--config", str(config), "--model", "m", "--corpus", "c", "--role", "planner", "--out", "o"], "umi-train sft", "x")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("umi-train sft: error: ") and error in err, err


def test_corpus_stats_as_frames_and_as_json(tmp_path: Path) -> None:
    import polars as pl

    from umi_data.building.build import BuildConfig, build_corpus
    from umi_data.corpus.stats import corpus_stats
    from umi_train.testing import sample_answer_dir

    build_corpus(BuildConfig(source="toolbench", inputs=[str(sample_answer_dir())]), tmp_path / "c", progress=False)
    frames, numbers = corpus_stats(tmp_path / "c", frames=True), corpus_stats(tmp_path / "c")
    assert all(isinstance(frame, pl.DataFrame) for frame in frames.values())
    assert dict(frames["by_outcome"].iter_rows()) == numbers["counts"]["by_outcome"]
    assert frames["steps"].to_dicts() == numbers["steps"] and frames["length_summary"].height == len(numbers["lengths"])


def test_the_card_links_resolve_from_the_card(tmp_path: Path) -> None:
    from umi_data.building.build import BuildConfig, build_corpus
    from umi_train.testing import sample_answer_dir

    out = tmp_path / "c"
    build_corpus(BuildConfig(source="toolbench", inputs=[str(sample_answer_dir())]), out, progress=False)
    card = (out / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", card)
    assert links and [link for link in links if not (out / link).exists()] == []
    assert not re.search(r"(?<![\w/])docs/", card.replace("docs/differences.md of the umi repository", ""))


def test_the_readme_speaks_of_the_project_and_its_users() -> None:
    pages = [REPO / "README.md", *(REPO / "data_cards").rglob("README.md"), *(REPO / "docs").rglob("*.md")]
    text = "".join(p.read_text() for p in pages).replace("gpt-4-turbo-2024-04-09", "a judge model")  # a model's name, not a date
    for pattern in (r"\bissue\b", r"\bthis task\b", r"\bcommit [0-9a-f]{7,}", r"\b20\d\d-\d\d-\d\d\b"):
        assert not re.search(pattern, text, flags=re.I), pattern
