"""`make demo` (`python -m umi_agent.demo --out demo-out`): umi end to end, offline, on CPU.

1. synthesize a tool world (training tasks, and held-out tasks with another seed);
2. build the corpus (trajectories, role corpora, data card) and query it with DuckDB;
3. build a tiny model and train α-UMi (`glpft --variant reuse`) and the Single-LLM baseline
   (`--variant single`) on the same data and step budget;
4. static evaluation on the held-out tasks (teacher-forced, the paper's Table 1 metrics);
5. live episodes on the held-out tasks against the real synthetic tools;
6. one table, α-UMi beside Single-LLM, and where every artifact is.

Every step runs the documented command line in a subprocess and prints it. The numbers are
those of a few-hundred-thousand-parameter model trained for a few minutes: honest, not good.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from umi_agent.jsonio import write_json
from umi_data.outdir import OutDirError, Output, claim_out_dir

DEMO_FILE = "demo.json"
TRAIN_TASKS, HELDOUT_TASKS = 240, 16
TRAINING = ["--max-steps", "400", "--learning-rate", "1e-2", "--lora-r", "16", "--lora-alpha", "32",
            "--eval-fraction", "0.05", "--save-steps", "1000", "--max-length", "1536", "--quiet"]
GENERATION = ["--max-new-tokens", "96"]
RUNS = {"α-UMi (reuse)": "reuse", "Single-LLM": "single"}
ROWS = [("Plan ACC", "static", "plan_em"), ("Act. EM", "static", "action_em"), ("Hallu.", "static", "hallu_rate"),
        ("Arg. F1", "static", "f1"), ("ROUGE-L", "static", "rouge"), ("answered correctly", "live", "answered_correctly")]


def step(title: str, *command: str, only: str | None = None) -> str:
    """Run one documented command, print it and its output (only the lines containing `only`,
    when given), fail loudly."""
    print(f"\n== {title}\n$ {' '.join(shlex.quote(c) for c in command)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"demo step failed ({title}), exit {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if only is None or only in line]
    print("\n".join(lines))
    print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    return done.stdout


def table(static: dict[str, dict], live: dict[str, dict]) -> str:
    sources = {"static": static, "live": live}
    names = list(RUNS)
    lines = [["", *names]]
    for label, where, key in ROWS:
        values = [sources[where][RUNS[name]].get(key) for name in names]
        lines.append([label, *("-" if v is None else f"{v:.3f}" for v in values)])
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines)


#: what the demo writes into --out; an earlier demo there is replaced, nothing else is touched
DEMO_OUTPUT = Output(command="python -m umi_agent.demo", markers=(DEMO_FILE,),
                     owns=("world", "heldout", "corpus", "heldout-corpus", "tiny", "runs", "static", "live", DEMO_FILE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m umi_agent.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"),
                        help="where everything is written: a new or empty directory, or an earlier demo's (replaced)")
    args = parser.parse_args(argv)
    try:
        with claim_out_dir(args.out, DEMO_OUTPUT) as claim:
            claim.sweep()  # the earlier demo's files, and only those
            return run_demo(args.out)
    except OutDirError as exc:
        print(f"python -m umi_agent.demo: error: {exc}", file=sys.stderr)
        return 2


def run_demo(out: Path) -> int:
    """Every step of the demo into `out` (claimed and emptied of an earlier demo by `main`)."""
    py = sys.executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()

    step("1. synthesize a tool world", py, "-m", "umi_data", "synth", "--n", str(TRAIN_TASKS), "--seed", "0", "--out", str(out / "world"))
    step("   and held-out tasks", py, "-m", "umi_data", "synth", "--n", str(HELDOUT_TASKS), "--seed", "1", "--out", str(out / "heldout"))
    step("2. build the corpus (+ data card)", py, "-m", "umi_data", "build", "toolbench", str(out / "world" / "answer"),
         "--out", str(out / "corpus"), "--no-progress")
    step("   query it with DuckDB", py, "-m", "umi_data", "query", str(out / "corpus"),
         "select name, count(*) as calls, sum((error <> '')::int) as errors from tool_calls group by 1 order by 2 desc limit 5")
    step("   the held-out tasks as a static test set (α-UMi stage-2 shape)", py, "-m", "umi_data", "build", "toolbench",
         str(out / "heldout" / "answer"), "--compat", "alpha-umi", "--out", str(out / "heldout-corpus"), "--no-progress")
    step("3. a tiny model with a tokenizer trained on the corpus", py, "-m", "umi_train.tiny", "--corpus", str(out / "corpus"),
         "--out", str(out / "tiny"))
    for name, variant in RUNS.items():
        step(f"   train {name}", py, "-m", "umi_train.glpft", "--model", str(out / "tiny"), "--corpus", str(out / "corpus"),
             "--variant", variant, "--out", str(out / "runs" / variant), *TRAINING, only="umi_train.glpft:")
    static = {}
    test_set = out / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    for name, variant in RUNS.items():
        predictions, metrics = out / "static" / f"{variant}-predictions.json", out / "static" / f"{variant}-metrics.json"
        step(f"4. static evaluation of {name}", py, "-m", "umi_agent.predict", "--run", str(out / "runs" / variant),
             "--test", str(test_set), "--out", str(predictions), *GENERATION)
        step("   score", py, "-m", "umi_agent.evaluate", "--predictions", str(predictions), "--out", str(metrics))
        static[variant] = json.loads(metrics.read_text())
    step("5. live episodes against the synthetic tools", py, "-m", "umi_agent.run", "--run", str(out / "runs" / "reuse"),
         "--run", str(out / "runs" / "single"), "--tasks", str(out / "heldout" / "tasks.jsonl"), "--out", str(out / "live"),
         "--max-steps", "5", *GENERATION)
    live = json.loads((out / "live" / "metrics.json").read_text())

    print(f"\n== 6. α-UMi beside Single-LLM ({HELDOUT_TASKS} held-out synthetic tasks; tiny model, "
          f"{TRAINING[1]} steps per stage)\n")
    print(table(static, live))
    print(f"\nartifacts (in {out}/): world/ and heldout/ (synthetic tasks), corpus/ (trajectories, role corpora, "
          "README.md data card with card/*.png), tiny/ (model), runs/reuse and runs/single (GLPFT runs), "
          "static/ (predictions and metrics), live/ (episodes, their corpora, metrics.json)")
    write_json(out / DEMO_FILE, {"kind": "umi-demo", "static": static, "live": live})
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
