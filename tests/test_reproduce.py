"""`python -m umi_agent.reproduce`: batched generation, disjoint held-out tasks, and the whole
Table 1 pipeline end to end at the tiny scale (rerun skips every finished step)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from umi_agent import reproduce
from umi_data.synth import heldout
from umi_train.testing import sample_corpus, single_thread, tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    root = tmp_path_factory.getbasetemp()
    return tiny_model(root / "tiny-model", sample_corpus(root / "sample-corpus"))


def test_batched_generation_equals_one_prompt_at_a_time(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from umi_agent.backends import TransformersModel, generate_all

    model = TransformersModel(AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny), max_new_tokens=12)
    prompts = ["user: hi</s>", "planner: Next: caller.</s>caller: Action: get_weather\nAction Input: {\"city\": \"Oslo\"}",
               "system: a much longer prompt than the others, so that the batch really needs left padding " * 3, "x"]
    one_by_one = [model.generate(prompt) for prompt in prompts]
    assert len(set(one_by_one)) > 1  # the check below compares real, differing outputs
    assert model.generate_batch(prompts) == one_by_one
    assert generate_all(model, prompts, batch_size=3) == one_by_one  # sorted by length, then back in order


def test_decode_cuts_at_the_models_own_eos(tiny: Path) -> None:
    """SmolLM2's EOS is `<|im_end|>`, not `</s>`: the text after the first EOS must not leak out."""
    from transformers import AutoTokenizer

    from umi_agent.backends import TransformersModel

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = TransformersModel.__new__(TransformersModel)
    model.tokenizer = tokenizer
    words = tokenizer("Action: x", add_special_tokens=False)["input_ids"]
    assert model.decode([*words, tokenizer.eos_token_id, *words]) == tokenizer.decode(words)


def _rows(instructions: list[str]) -> list[dict]:
    return [{"id": f"{i:06d}", "instruction": text, "answer_file": f"answer/G1_answer/{i:06d}_synthetic.json"}
            for i, text in enumerate(instructions)]


def test_heldout_tasks_share_no_instruction_with_training(tmp_path: Path) -> None:
    train, pool = _rows(["a", "b", "c"]), _rows(["b", "d", "a", "e", "f"])
    kept, dropped = heldout.disjoint_tasks(train, pool, 3)
    assert [row["instruction"] for row in kept] == ["d", "e", "f"] and dropped == 2
    with pytest.raises(heldout.HeldoutError, match="only 3 pool tasks"):
        heldout.disjoint_tasks(train, pool, 4)


def test_heldout_command_copies_only_the_kept_answer_files(tmp_path: Path) -> None:
    from umi_data.synth.world import write_synthetic

    write_synthetic(tmp_path / "train", 6, seed=0)
    write_synthetic(tmp_path / "pool", 5, seed=1)
    train_rows = heldout.read_rows(tmp_path / "train" / "tasks.jsonl")
    # make the pool's first task a training duplicate: it must be passed over
    pool_rows = heldout.read_rows(tmp_path / "pool" / "tasks.jsonl")
    pool_rows[0]["instruction"] = train_rows[2]["instruction"]
    (tmp_path / "pool" / "tasks.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in pool_rows))
    assert heldout.main(["--train", str(tmp_path / "train" / "tasks.jsonl"), "--pool", str(tmp_path / "pool"), "--n", "3",
                         "--out", str(tmp_path / "out")]) == 0
    kept = heldout.read_rows(tmp_path / "out" / "tasks.jsonl")
    assert [r["id"] for r in kept] == [r["id"] for r in pool_rows[1:4]]
    assert sorted(p.name for p in (tmp_path / "out" / "answer" / "G1_answer").iterdir()) == sorted(Path(r["answer_file"]).name for r in kept)
    assert heldout.main(["--train", str(tmp_path / "train" / "tasks.jsonl"), "--pool", str(tmp_path / "pool"), "--n", "9",
                         "--out", str(tmp_path / "out2")]) == 2


def test_every_step_has_a_done_marker_and_sizes_come_from_the_options(tmp_path: Path) -> None:
    _, scale = reproduce.parse_scale(["--scale", "tiny", "--max-steps", "7", "--model", "tiny"])
    assert scale.max_steps == 7 and scale.train_tasks == reproduce.SCALES["tiny"].train_tasks
    pipeline = reproduce.steps(tmp_path, scale, "python")
    assert all(step.done is not None for step in pipeline)
    assert len({step.title.strip() for step in pipeline}) == len(pipeline)
    trained = [s for s in pipeline if "umi_train.glpft" in s.command]
    assert [s.command[s.command.index("--variant") + 1] for s in trained] == list(reproduce.ROW_ORDER)
    assert all(s.command[s.command.index("--max-steps") + 1] == "7" for s in trained)  # one step budget for all
    shares = [s.command[s.command.index("--stage1-from") + 1] for s in trained if "--stage1-from" in s.command]
    assert shares == [str(tmp_path / "runs" / "single")] and "--stage1-from" in trained[-1].command  # reuse takes single's stage 1


def test_other_settings_in_the_same_out_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reproduce.check_settings(tmp_path, reproduce.SCALES["tiny"])
    with pytest.raises(reproduce.UsageError, match="max_steps"):
        reproduce.check_settings(tmp_path, reproduce.SCALES["tiny"].__class__(**{**reproduce.asdict(reproduce.SCALES["tiny"]), "max_steps": 99}))


def test_reproduce_end_to_end_at_tiny_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert reproduce.main(["--scale", "tiny", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    table = (out / "table1.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [line.split(" | ")[0][2:] for line in lines] == ["Single-LLM", "Multi-LLM one-stage", "Single-LLM multi-task",
                                                           "α-UMi w/o reuse", "α-UMi w/ reuse"]
    for line in lines:  # Plan ACC, Act. EM (when some gold step calls), live answered correctly: real numbers
        cells = [c.strip() for c in line.strip("| ").split(" | ")]
        rate = r"\d+\.\d \[\d+\.\d, \d+\.\d\]"  # a rate and its Wilson 95% interval
        assert re.fullmatch(rate, cells[1]) and re.fullmatch(rate, cells[6])
    assert (out / "table1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    static = json.loads((out / "static" / "reuse-metrics.json").read_text())
    assert static["counts"]["samples"] > 0
    backbones = [json.loads((out / "runs" / v / "glpft.json").read_text())["stages"]["stage1"]["parts"]["backbone"] for v in ("single", "reuse")]
    assert backbones[1]["copied_from"] == str(out / "runs" / "single" / "stage1" / "backbone")
    assert backbones[0]["adapter_sha256"] == backbones[1]["adapter_sha256"]
    assert json.loads((out / "runs" / "reuse" / "glpft.json").read_text())["config"]["prompt_format"] == "chat"  # the tiny scale's format
    assert all((out / "runs" / "reuse" / "stage2" / part / "loss.png").is_file() for part in ("planner", "caller", "summarizer"))
    heldout_instructions = {r["instruction"] for r in heldout.read_rows(out / "heldout" / "tasks.jsonl")}
    assert not heldout_instructions & {r["instruction"] for r in heldout.read_rows(out / "world" / "tasks.jsonl")}
    assert "α-UMi w/ reuse" in first and first.count("(skipped:") == 0

    assert reproduce.main(["--scale", "tiny", "--out", str(out)]) == 0  # a rerun: every step skipped
    second = capsys.readouterr().out
    assert second.count("(skipped:") == len(reproduce.steps(out, reproduce.SCALES["tiny"]))
    assert (out / "table1.md").read_text().split("\n\n")[0] == table.split("\n\n")[0]
    assert reproduce.main(["--scale", "tiny", "--out", str(out), "--max-steps", "5"]) == 2  # other settings: refused


def test_wilson_intervals_match_known_values() -> None:
    from umi_agent.table1 import wilson

    low, high = wilson(0.5, 10)
    assert abs(low - 0.2366) < 1e-4 and abs(high - 0.7634) < 1e-4
    low, high = wilson(0.0, 40)  # no success in 40 tasks: still up to ~8.8%
    assert low == 0.0 and abs(high - 0.0876) < 1e-4
    assert wilson(1.0, 5)[1] == 1.0 and wilson(0.3, 0) == (0.0, 1.0)
    for trials in range(1, 60):  # the interval always holds the rate (rounding once put 0 above its own low end)
        assert all(wilson(k / trials, trials)[0] <= k / trials <= wilson(k / trials, trials)[1] for k in range(trials + 1))


def test_the_table_gives_every_rate_its_interval_from_the_counts() -> None:
    from umi_agent.table1 import markdown, rows, wilson

    static = {"single": {"plan_em": 0.25, "action_em": 0.5, "hallu_rate": None, "f1": 0.4, "rouge": 0.1,
                         "counts": {"gold": {"call": 6, "finish": 2, "give up": 0}, "action_scored": 4, "predicted_calls": 0}}}
    live = {"single": {"answered_correctly": 0.1, "gave_up": 0.0, "hallucinated_calls": 0, "mean_steps": 2.0, "episodes": 40, "latency_ms": {}}}
    table = rows(static, live)
    assert table[0]["intervals"]["Plan ACC"] == wilson(0.25, 8) and table[0]["intervals"]["Answered correctly"] == wilson(0.1, 40)
    assert "Arg. F1" not in table[0]["intervals"] and "Hallu." not in table[0]["intervals"]  # a mean; no predicted call
    line = markdown(table).splitlines()[2]
    assert "| 25.0 [7.1, 59.1] |" in line and "| 40.0 |" in line


def test_rows_choose_the_setups_trained_and_evaluated(tmp_path: Path) -> None:
    args, scale = reproduce.parse_scale(["--scale", "tiny", "--rows", "reuse,single"])
    assert args.rows == ("single", "reuse")
    pipeline = reproduce.steps(tmp_path, scale, "python", chosen=args.rows)
    trained = [s.command[s.command.index("--variant") + 1] for s in pipeline if "umi_train.glpft" in s.command]
    assert trained == ["single", "reuse"] and "--stage1-from" in [s for s in pipeline if "umi_train.glpft" in s.command][1].command
    alone = reproduce.steps(tmp_path, scale, "python", chosen=("reuse",))
    assert not any("--stage1-from" in s.command for s in alone)  # no Single-LLM run to take stage 1 from: trained
    assert len([s for s in alone if "umi_agent.run" in s.command]) == 1
    with pytest.raises(SystemExit):
        reproduce.parse_scale(["--rows", "single,best"])
    _, cpu = reproduce.parse_scale([])
    assert cpu.heldout_tasks >= 40  # enough held-out tasks to tell rows apart (issue 24)


def test_curve_points_keep_the_checkpoints_and_add_the_curves_step(tmp_path: Path) -> None:
    _, scale = reproduce.parse_scale(["--scale", "tiny", "--max-steps", "8", "--curve-points", "4"])
    pipeline = reproduce.steps(tmp_path, scale, "python")
    trained = [s.command for s in pipeline if "umi_train.glpft" in s.command]
    assert all(c[c.index("--save-steps") + 1] == "2" and c[c.index("--save-total-limit") + 1] == "5" for c in trained)
    curve = [s for s in pipeline if "umi_agent.curves" in s.command]
    assert len(curve) == 1 and curve[0].command[curve[0].command.index("--steps") + 1] == "2,4,6,8"
    assert curve[0].done == tmp_path / "curves.json"
    finals = [list(curve[0].command[i + 1:i + 4]) for i, a in enumerate(curve[0].command) if a == "--final"]  # the table's own scores
    assert finals == [[str(tmp_path / "runs" / r), str(tmp_path / "static" / f"{r}-metrics.json"), str(tmp_path / "live" / r / "metrics.json")]
                      for r in ("single", "reuse")]
    assert not [s for s in reproduce.steps(tmp_path, scale, "python", chosen=("reuse",)) if "umi_agent.curves" in s.command]
    assert not [s for s in reproduce.steps(tmp_path, reproduce.SCALES["tiny"], "python") if "umi_agent.curves" in s.command]
