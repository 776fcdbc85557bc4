"""Learning curves: `python -m umi_agent.curves --run RUN [--run RUN2 ...] --test FILE --tasks FILE --out DIR`.

Each GLPFT run is evaluated at several of its checkpoints: static Plan ACC, Act. EM and Arg. F1
on the held-out steps of `--test` (teacher-forced, as `umi_agent.predict` + `evaluate`), and
live answered-correctly on the held-out tasks of `--tasks` (as `umi_agent.run`, episodes played
in batches). A run at step k is its last stage's adapters at their checkpoint of step k, on the
model under them in the finished run: for Single-LLM the backbone after k steps; for α-UMi w/
reuse the planner, caller and summarizer after k steps of stage 2, on the whole stage-1 model.
So the x axis counts the steps of the last stage, the same budget per model for every row.

Writes DIR/curves.json (every number, each rate with its Wilson 95% interval and trial count)
and DIR/curves.png (one panel per metric, one line per run, the intervals shaded). The steps
evaluated are `--steps`, default every checkpoint the runs share.

The finished run is its last checkpoint: when it was already scored (`evaluate` on `predict`'s
output of the same `--test`, and `run` on the same `--tasks`, with the same generation options),
`--final RUN STATIC_METRICS LIVE_METRICS` takes that point from those two files instead of
evaluating it again (`make reproduce` passes its own table's files; a point costs a static and a
live evaluation). The files must be of that run and of as many steps and tasks, or it refuses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from umi_data.plumbing.cli import Parser, fail

PROG = "umi-agent curves"
CURVES_JSON, CURVES_PNG = "curves.json", "curves.png"
#: (key in a point, panel title, trial-count key or None for a mean)
METRICS = (("plan_em", "Plan ACC", "plan_scored"), ("action_em", "Act. EM", "action_scored"), ("f1", "Arg. F1", None),
           ("answered_correctly", "Live answered correctly", "episodes"))


class CurvesError(ValueError):
    """A usage error: a run without the checkpoints asked for, a missing file."""


def last_stage_parts(run: Path) -> list[Path]:
    """The part run directories of the run's last stage (whose checkpoints make the curve)."""
    from umi_agent.backends import glpft_record
    from umi_data.rendering.variants import get_variant

    stage = get_variant(glpft_record(run)["variant"]).stages[-1]
    return [run / stage.name / part.name for part in stage.parts]


def checkpoint_steps(run: Path) -> list[int]:
    """The steps at which every part of the run's last stage kept a checkpoint."""
    kept = [{int(p.name.split("-")[1]) for p in (part / "checkpoints").glob("checkpoint-*") if (p / "adapter_config.json").is_file()}
            for part in last_stage_parts(run)]
    return sorted(set.intersection(*kept)) if kept else []


def final_step(run: Path) -> int | None:
    """The step at which the run's last stage ended (the same for all its parts), or None."""
    from umi_agent.jsonio import read_json

    ended = set()
    for part in last_stage_parts(run):
        record = read_json(part / "run.json", "a part's run record")
        training = record.get("training") if isinstance(record, dict) else None
        ended.add(training.get("steps") if isinstance(training, dict) else None)
    return ended.pop() if len(ended) == 1 and None not in ended else None


def scored_point(run: Path, step: int, static_file: Path, live_file: Path, samples: Sequence[Any], tasks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The finished run's point, read from its static and live metrics files (`--final`)."""
    from umi_agent.jsonio import read_json

    static = read_json(static_file, "static metrics (umi_agent.evaluate --out)")
    live_record = read_json(live_file, "live metrics (umi_agent.run's metrics.json)")
    live = live_record.get(run.name) if isinstance(live_record, dict) else None
    counts = static.get("counts") if isinstance(static, dict) else None
    if (not isinstance(counts, dict) or not all(k in static for k in ("plan_em", "action_em", "f1"))
            or not isinstance(counts.get("gold"), dict) or "action_scored" not in counts):
        raise CurvesError(f"{static_file} is not umi_agent.evaluate's metrics (no plan_em, action_em, f1 and counts)")
    if not isinstance(live, dict) or Path(str(live.get("run"))).resolve() != run.resolve():
        raise CurvesError(f"{live_file} holds no live metrics of the run {run} (umi_agent.run --run {run} writes them)")
    if not all(k in live for k in ("answered_correctly", "episodes", "gave_up")):
        raise CurvesError(f"{live_file}: the live metrics of {run.name} lack answered_correctly, episodes or gave_up")
    if counts.get("samples") != len(samples) or live.get("episodes") != len(tasks):
        raise CurvesError(f"--final {run}: its files scored {counts.get('samples')} steps and {live.get('episodes')} tasks, "
                          f"the curve scores {len(samples)} and {len(tasks)}")
    return {**values(step, static, live), "from": {"static": str(static_file), "live": str(live_file)}}


def point(run: Path, step: int, samples: Sequence[Any], tasks: Sequence[dict[str, Any]], options: argparse.Namespace) -> dict[str, Any]:
    """Static and live metrics of `run` at checkpoint `step`."""
    from umi_agent.backends import role_models
    from umi_agent.evaluate import evaluate, rows_from_records
    from umi_agent.predict import predict
    from umi_agent.run import agent_of, episode_metrics, play

    models = role_models(run, step, max_new_tokens=options.max_new_tokens)
    static = evaluate(rows_from_records(predict(models, list(samples), batch_size=options.batch_size)))
    live = episode_metrics(tasks, play(agent_of(models, options.live_max_steps), tasks, batch=options.batch_size))
    return values(step, static, live)


def values(step: int, static: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A curve's point from `evaluate`'s static metrics and `episode_metrics`' live ones: each rate with its Wilson interval."""
    from umi_agent.table1 import wilson

    counts = static["counts"]
    point = {"step": step, "plan_em": static["plan_em"], "action_em": static["action_em"], "f1": static["f1"],
             "answered_correctly": live["answered_correctly"], "plan_scored": sum(counts["gold"].values()),
             "action_scored": counts["action_scored"], "episodes": live["episodes"], "gave_up": live["gave_up"]}
    for key, _, trials in METRICS:
        if trials and point[key] is not None and point[trials]:
            point[f"{key}_interval"] = list(wilson(point[key], point[trials]))
    return point


def plot(curves: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    """One panel per metric; per run a line over the steps, its Wilson interval shaded."""
    from umi_train.plots import pyplot, save_figure

    plt = pyplot()
    figure, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.6), sharex=True)
    for axis, (key, label, _) in zip(axes, METRICS):
        for name, points in curves.items():
            shown = [p for p in points if p[key] is not None]
            steps = [p["step"] for p in shown]
            axis.plot(steps, [100 * p[key] for p in shown], "o-", label=name)
            bounds = [p.get(f"{key}_interval") for p in shown]
            if shown and all(bounds):
                axis.fill_between(steps, [100 * b[0] for b in bounds], [100 * b[1] for b in bounds], alpha=0.15)
        axis.set_title(label, fontsize="medium")
        axis.set_xlabel("steps of the last stage")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize="small")
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)


def learning_curves(runs: Sequence[Path], options: argparse.Namespace) -> dict[str, Any]:
    """Every run at every chosen step; written to OUT/curves.json and OUT/curves.png."""
    from umi_agent.run import read_tasks
    from umi_agent.static import load_samples
    from umi_data.plumbing.write import write_json

    samples, tasks = load_samples(options.test)[: options.limit], read_tasks(options.tasks, options.limit)
    shared = sorted(set.intersection(*(set(checkpoint_steps(run)) for run in runs)))
    steps = options.steps or shared
    missing = {run.name: sorted(set(steps) - set(checkpoint_steps(run))) for run in runs}
    if not steps or any(missing.values()):
        raise CurvesError(f"no checkpoints to evaluate at steps {steps or 'shared by the runs'} (missing: {missing}); "
                          "train with --save-steps N and a --save-total-limit that keeps them")
    finals = {Path(run).resolve(): (Path(static), Path(live)) for run, static, live in options.final or ()}
    unknown = [str(run) for run in finals if run not in {r.resolve() for r in runs}]
    if unknown:
        raise CurvesError(f"--final names a run that is not a --run: {', '.join(unknown)}")
    known = {}  # (run, step) -> a point read from its files; checked before anything is evaluated
    for run in runs:
        if run.resolve() in finals and (last := final_step(run)) in steps:
            known[run, last] = scored_point(run, last, *finals[run.resolve()], samples, tasks)
    curves = {}
    for run in runs:
        curves[run.name] = []
        for step in steps:
            curves[run.name].append(known.get((run, step)) or point(run, step, samples, tasks, options))
            print(f"{PROG}: {run.name} at step {step}: {_describe(curves[run.name][-1])}", flush=True)
    record = {"kind": "umi-learning-curves", "runs": {run.name: str(run) for run in runs}, "steps": steps,
              "static_samples": len(samples), "tasks": len(tasks), "curves": curves}
    options.out.mkdir(parents=True, exist_ok=True)
    write_json(options.out / CURVES_JSON, record)
    plot(curves, options.out / CURVES_PNG, f"{len(samples)} held-out steps, {len(tasks)} held-out tasks")
    return record


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{label} {'-' if values[key] is None else f'{100 * values[key]:.1f}%'}" for key, label, _ in METRICS)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, type=Path, metavar="RUN", help="a umi_train.glpft run directory (repeat)")
    parser.add_argument("--test", required=True, type=Path, metavar="FILE", help="stage-2 test file of the held-out steps")
    parser.add_argument("--tasks", required=True, type=Path, metavar="FILE", help="tasks.jsonl of the held-out tasks")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="where curves.json and curves.png are written")
    parser.add_argument("--steps", type=lambda text: sorted({int(s) for s in text.split(",") if s}), default=None, metavar="N,N",
                        help="checkpoint steps to evaluate (default: every step all runs kept)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N held-out steps and tasks")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="tokens a model may write per call")
    parser.add_argument("--live-max-steps", type=int, default=4, metavar="N", help="planner decisions per live episode")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="prompts (static) and episodes (live) generated together")
    parser.add_argument("--final", nargs=3, action="append", type=Path, metavar=("RUN", "FILE", "FILE"),
                        help="the finished RUN's point read from its static metrics FILE (umi_agent.evaluate --out) and live metrics "
                             "FILE (umi_agent.run's metrics.json), not evaluated again (repeat per run)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from umi_agent.backends import RunNotFoundError
    from umi_agent.jsonio import InputFileError
    from umi_agent.run import LiveRunError

    options = _parser().parse_args(argv)
    try:
        record = learning_curves(options.run, options)
    except (CurvesError, RunNotFoundError, InputFileError, LiveRunError, FileNotFoundError) as exc:
        return fail(PROG, exc)
    print(f"{PROG}: {len(record['steps'])} steps x {len(record['runs'])} runs -> {options.out / CURVES_JSON}, {options.out / CURVES_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["checkpoint_steps", "final_step", "learning_curves", "main", "plot", "point", "scored_point", "values"]
