"""Static (teacher-forced) predictions, as in the paper's Table 1:

    python -m umi_agent.predict --run RUN --test FILE --out predictions.json [--limit N]
    python -m umi_agent.predict --server URL --model planner=P --model caller=C --model summarizer=S --test FILE ...

One sample per gold planner decision of a stage-2 test file (e.g. α-UMi's out_of_domain.json),
given the gold history; the run's models write the step. An α-UMi run uses its planner, then its
caller or summarizer on the predicted plan; a Single-LLM run (`--variant single`) writes thought
and action in one backbone turn, which is split into the same predictions string. Score the file
with `python -m umi_agent.evaluate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from umi_agent.backends import RunNotFoundError
from umi_agent.jsonio import InputFileError
from umi_agent.loop import parse_backbone
from umi_agent.served import ServerError, add_server_arguments, served_models, server_requested
from umi_agent.static import (
    RoleBatch, StaticSample, format_prediction, is_predictions_file, load_samples, predict_samples, prediction_record, write_predictions,
)
from umi_data.plumbing.cli import Parser, fail
from umi_data.rendering.compat import caller_value
from umi_data.rendering.prompts import NEXT_SUFFIXES, fill, serialise_backbone_history

PROG = "umi-agent predict"
DEFAULT_BATCH = 8
Generate = Callable[[str], str]


def backbone_prompt(sample: StaticSample, family: str = "toolbench") -> str:
    return fill("backbone", family, tools=sample.tools, history_text=serialise_backbone_history(sample.history))


def predict_single(sample: StaticSample, backbone: Generate, family: str = "toolbench") -> dict[str, Any]:
    """One teacher-forced step of the Single-LLM baseline, in the α-UMi predictions shape."""
    return single_record(sample, backbone(backbone_prompt(sample, family)))


def single_record(sample: StaticSample, output: str) -> dict[str, Any]:
    """The predictions record of a Single-LLM backbone output: split into plan and action."""
    plan, action = parse_backbone(output)
    decision = (plan.next or "caller").replace("_", " ")  # an undecided turn is scored as a (wrong) call
    planner_output = (f"{plan.thought}\n" if plan.thought else "") + NEXT_SUFFIXES[decision]
    caller_output = caller_value(*action) if isinstance(action, tuple) else None
    if plan.next is None:
        caller_output = ""
    summarizer_output = action if isinstance(action, str) else None
    text = format_prediction(planner_output, caller_output, summarizer_output)
    return prediction_record(sample, text, backbone_output=output)


def predict(models: dict[str, Any], samples: list[StaticSample], family: str = "toolbench", batch_size: int = DEFAULT_BATCH) -> list[dict[str, Any]]:
    """One predictions record per sample, in sample order; models by role as `run.agent_of`
    takes them (`backbone`: the Single-LLM path). Each role writes all its outputs through
    `generate_all`, `batch_size` prompts at a time: one left-padded forward pass for a local
    model (the same text as one prompt at a time), up to `--concurrency` requests for a served one."""
    from umi_agent.backends import generate_all

    def role(name: str) -> RoleBatch:
        return lambda prompts: generate_all(models[name], prompts, batch_size, label=f"predict {name}")

    if "backbone" in models:
        outputs = role("backbone")([backbone_prompt(sample, family) for sample in samples])
        return [single_record(sample, output) for sample, output in zip(samples, outputs)]
    return predict_samples(samples, role("planner"), role("caller"), role("summarizer"), family)


def role_models_of(args: argparse.Namespace) -> dict[str, Any]:
    """The run's local models (`--run`) or the served ones (`--server`)."""
    if server_requested(args):
        if args.run is not None:
            raise ServerError("give a run directory (--run) or a server (--server), not both")
        return served_models(args, args.max_new_tokens)
    if args.run is None:
        raise ServerError("give a run directory (--run RUN) or a served model (--server URL --model ...)")
    from umi_agent.backends import role_models

    return role_models(args.run, max_new_tokens=args.max_new_tokens)


def main(argv: list[str] | None = None) -> int:
    parts = __doc__.split("\n\n")
    parser = Parser(prog=PROG, description=parts[0].rstrip(":") + ".\n\n" + parts[2])
    parser.add_argument("--run", type=Path, metavar="RUN", help="a umi_train.glpft run directory")
    parser.add_argument("--test", required=True, type=Path, metavar="FILE", help="a stage-2 test file (e.g. out_of_domain.json), or a corpus directory built with "
                        "`umi-data build ... --compat alpha-umi` (its alpha_umi/raw_data_stage_2.json)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="predictions file to write (JSON array)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="predict only the first N samples")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="tokens a model may write per call")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="N",
                        help="prompts generated together per role (1: one at a time)")
    parser.add_argument("--family", choices=["toolbench", "toolalpaca"], default="toolbench", help="prompt family")
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    from umi_data.plumbing.outdir import OutDirError, check_out_file

    try:
        check_out_file(args.out, "umi-agent predict", is_predictions_file)  # before the models run, not after
        samples = load_samples(args.test)[: args.limit]
        records = predict(role_models_of(args), samples, args.family, max(args.batch_size, args.concurrency if args.server else 1))
    except (InputFileError, RunNotFoundError, ServerError, FileNotFoundError, OutDirError) as exc:
        return fail(PROG, exc)
    write_predictions(args.out, records)
    print(f"{len(records)} predictions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
