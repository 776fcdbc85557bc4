"""`make demo` (`python -m umi_agent.demo --out demo-out --fresh`): umi end to end, offline, on CPU.

1. synthesize a tool world (training tasks, and held-out tasks with another seed);
2. build the corpus (trajectories, role corpora, data card) and query it with DuckDB;
3. build a tiny model and train α-UMi (`glpft --variant reuse`) and the Single-LLM baseline
   (`--variant single`) on the same data and step budget;
4. static evaluation on the held-out tasks (teacher-forced, the paper's Table 1 metrics);
5. live episodes on the held-out tasks against the real synthetic tools;
6. one table, α-UMi beside Single-LLM, where every artifact is, and how long each step took.

Every step runs the documented command line in a subprocess (`umi_agent.steps`): the command is
printed and its output streams as it is written (training prints a progress line every tenth of
its steps). Without `--fresh`, steps whose output is complete are skipped, so an interrupted demo
continues. The numbers are those of a few-hundred-thousand-parameter model trained for a few
minutes: honest, not good.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from umi_agent.jsonio import write_json
from umi_agent.steps import Step, StepFailed, run_steps, timing_table
from umi_data.plumbing.cli import Parser, fail
from umi_data.plumbing.outdir import OutDirError, Output, claim_out_dir

DEMO_FILE = "demo.json"
#: what the demo writes into --out; an earlier demo there is replaced (--fresh) or continued,
#: nothing else is touched
DEMO_OUTPUT = Output(command="umi-agent demo", markers=(DEMO_FILE,),
                     owns=("world", "heldout", "corpus", "heldout-corpus", "tiny", "runs", "static", "live", DEMO_FILE))

TRAIN_TASKS, HELDOUT_TASKS = 240, 16
TRAINING = ["--max-steps", "400", "--learning-rate", "1e-2", "--lora-r", "16", "--lora-alpha", "32",
            "--eval-fraction", "0.05", "--save-steps", "1000", "--max-length", "1536"]
GENERATION = ["--max-new-tokens", "96"]
RUNS = {"α-UMi (reuse)": "reuse", "Single-LLM": "single"}
QUERY = "select name, count(*) as calls, sum((error <> '')::int) as errors from tool_calls group by 1 order by 2 desc limit 5"
ROWS = [("Plan ACC", "static", "plan_em"), ("Act. EM", "static", "action_em"), ("Hallu.", "static", "hallu_rate"),
        ("Arg. F1", "static", "f1"), ("ROUGE-L", "static", "rouge"), ("answered correctly", "live", "answered_correctly")]


def table(static: dict[str, dict], live: dict[str, dict]) -> str:
    sources = {"static": static, "live": live}
    names = list(RUNS)
    lines = [["", *names]]
    for label, where, key in ROWS:
        values = [sources[where][RUNS[name]].get(key) for name in names]
        lines.append([label, *("-" if v is None else f"{v:.3f}" for v in values)])
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines)


def steps(out: Path, py: str = sys.executable) -> list[Step]:
    """The demo's pipeline: each step is a documented command line and the file it writes last."""
    corpus, tiny, test_set = out / "corpus", out / "tiny", out / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    pipeline = [
        Step("1. synthesize a tool world", (py, "-m", "umi_data", "synth", "--n", str(TRAIN_TASKS), "--seed", "0", "--out", str(out / "world")),
             out / "world" / "tasks.jsonl"),
        Step("   and held-out tasks", (py, "-m", "umi_data", "synth", "--n", str(HELDOUT_TASKS), "--seed", "1", "--out", str(out / "heldout")),
             out / "heldout" / "tasks.jsonl"),
        Step("2. build the corpus (+ data card)", (py, "-m", "umi_data", "build", "toolbench", str(out / "world" / "answer"), "--out", str(corpus)),
             corpus / "manifest.json"),
        Step("   query it with DuckDB", (py, "-m", "umi_data", "query", str(corpus), QUERY)),
        Step("   the held-out tasks as a static test set (α-UMi stage-2 shape)",
             (py, "-m", "umi_data", "build", "toolbench", str(out / "heldout" / "answer"), "--compat", "alpha-umi", "--out", str(out / "heldout-corpus")),
             out / "heldout-corpus" / "manifest.json"),
        Step("3. a tiny model with a tokenizer trained on the corpus", (py, "-m", "umi_train.tiny", "--corpus", str(corpus), "--out", str(tiny)),
             tiny / "umi_model.json"),
    ]
    for name, variant in RUNS.items():
        run = out / "runs" / variant
        pipeline.append(Step(f"   train {name}", (py, "-m", "umi_train.glpft", "--model", str(tiny), "--corpus", str(corpus),
                                                   "--variant", variant, "--out", str(run), *TRAINING), run / "glpft.json"))
    for name, variant in RUNS.items():
        predictions, metrics = out / "static" / f"{variant}-predictions.json", out / "static" / f"{variant}-metrics.json"
        pipeline.append(Step(f"4. static evaluation of {name}", (py, "-m", "umi_agent.predict", "--run", str(out / "runs" / variant),
                                                                   "--test", str(test_set), "--out", str(predictions), *GENERATION), predictions))
        pipeline.append(Step("   score", (py, "-m", "umi_agent.evaluate", "--predictions", str(predictions), "--out", str(metrics)), metrics))
    pipeline.append(Step("5. live episodes against the synthetic tools",
                         (py, "-m", "umi_agent.run", *(arg for v in RUNS.values() for arg in ("--run", str(out / "runs" / v))),
                          "--tasks", str(out / "heldout" / "tasks.jsonl"), "--out", str(out / "live"), "--max-steps", "5", *GENERATION),
                         out / "live" / "metrics.json"))
    return pipeline


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="umi-agent demo", description="Run umi end to end, offline, on CPU.\n\n" + __doc__.split("\n\n", 1)[1])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                        help="where everything is written: a new or empty directory, or an earlier demo's")
    parser.add_argument("--fresh", action="store_true",
                        help="delete an earlier demo's files in --out (only those) and run every step (default: skip the steps already complete)")
    args = parser.parse_args(argv)
    try:
        with claim_out_dir(args.out, DEMO_OUTPUT) as claim:
            if args.fresh:
                claim.sweep()  # the earlier demo's files, and only those
            return run_demo(args.out, args.quiet, parser.prog)
    except OutDirError as exc:
        return fail(parser.prog, exc)


def run_demo(out: Path, quiet: bool, prog: str) -> int:
    """Every step of the demo into `out` (claimed by `main`), then the table."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # The tiny model's matrices are too small to share between threads: on a busy machine, OpenMP
    # threads waiting for each other make each step several times slower (umi_train.testing).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet_flag = ("--quiet",) if quiet else ()
    try:
        results = run_steps([Step(s.title, s.command + quiet_flag, s.done) for s in steps(out)])
    except StepFailed as exc:
        return fail(prog, exc)
    static = {v: json.loads((out / "static" / f"{v}-metrics.json").read_text()) for v in RUNS.values()}
    live = json.loads((out / "live" / "metrics.json").read_text())

    print(f"\n== 6. α-UMi beside Single-LLM ({HELDOUT_TASKS} held-out synthetic tasks; tiny model, "
          f"{TRAINING[1]} steps per stage)\n")
    print(table(static, live))
    print(f"\nartifacts (in {out}/): world/ and heldout/ (synthetic tasks), corpus/ (trajectories, role corpora, "
          "README.md data card with card/*.png), tiny/ (model), runs/reuse and runs/single (GLPFT runs), "
          "static/ (predictions and metrics), live/ (episodes, their corpora, metrics.json)")
    write_json(out / DEMO_FILE, {"kind": "umi-demo", "static": static, "live": live})
    print(f"\nsteps:\n{timing_table(results)}")
    print(f"demo finished in {sum(r.seconds for r in results):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
