"""`python -m umi_agent.passrate`: StableToolBench's pass rate (and win rate) of answer files.

    python -m umi_agent.passrate convert ANSWER_DIR --method M --out FILE
    python -m umi_agent.passrate ANSWERS_OR_CONVERTED... --judge-url URL --judge-model M \\
        [--evaluate-times N] [--test-ids PATH] [--win-rate REFERENCE] --out DIR

Writes under DIR, in StableToolBench's layout: `model_predictions_converted/{model}/{group}.json`,
`pass_rate_results/{model}/{group}_{model}.json|csv`, `preference_results/{group}_{ref}_{model}.json|csv`
(with --win-rate), `summary.json`, and the judge's verdict cache `judge_cache.jsonl`.
Exit 0; 1 when some verdict is missing (the judge failed: counted, one line, scored 0 as ToolEval
scores a missing round); 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from umi_agent.jsonio import InputFileError, encode_json, write_files
from umi_data.plumbing.cli import Parser, fail

PROG = "umi-agent passrate"
CONVERT_PROG = f"{PROG} convert"
SUMMARY = "ToolEval's pass rate (and win rate) of ToolBench answer files, with any OpenAI-compatible judge"


def positive_int_type(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def convert_parser() -> Parser:
    parser = Parser(prog=CONVERT_PROG,
                    description="StableToolBench's converted-answer file of a directory of ToolBench answer files.")
    parser.add_argument("answer_dir", type=Path, metavar="DIR", help="answer files ({qid}_{method}.json)")
    parser.add_argument("--method", required=True, metavar="NAME", help="the method: files whose name contains it are read")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="the converted-answer file to write")
    add_order(parser)
    return parser


def add_order(parser: Parser) -> None:
    parser.add_argument("--order", choices=["sorted", "listdir"], default="sorted",
                        help="file order, which decides the random picks of invalid runs: sorted names (the same everywhere), "
                             "or os.listdir's (the official script's, to reproduce its output exactly)")


def score_parser() -> Parser:
    parser = Parser(prog=PROG, description=SUMMARY + ".\n\n" + __doc__.split("\n\n", 1)[1])
    parser.add_argument("inputs", nargs="+", type=Path, metavar="PATH",
                        help="answer directories, converted-answer files, or directories of either (one test set each)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the results go")
    parser.add_argument("--method", metavar="NAME", help="method of the answer files (default: read from their names)")
    parser.add_argument("--model-name", metavar="NAME", help="the model's name in the results (default: the parent directory's)")
    parser.add_argument("--judge-url", metavar="URL", help="base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--judge-model", metavar="NAME", help="the judge model's name on that server")
    parser.add_argument("--evaluate-times", type=positive_int_type, default=3, metavar="N", help="judge rounds per query")
    parser.add_argument("--test-ids", type=Path, metavar="PATH",
                        help="query ids to score: a file ({id: ...} or [id, ...]) or a directory of {group}.json (default: all)")
    parser.add_argument("--win-rate", type=Path, metavar="PATH", help="a reference run (the same kinds of input) to compare with")
    parser.add_argument("--judge-cache", type=Path, metavar="FILE", help="verdict cache (default: DIR/judge_cache.jsonl)")
    parser.add_argument("--judge-concurrency", type=positive_int_type, default=8, metavar="N", help="judge requests in flight")
    parser.add_argument("--judge-timeout", type=float, default=60.0, metavar="X", help="seconds per judge request")
    parser.add_argument("--judge-retries", type=positive_int_type, default=3, metavar="N", help="tries per judge call (ToolEval: 3)")
    parser.add_argument("--judge-retry-wait", type=float, default=4.0, metavar="X", help="seconds between tries (ToolEval: 4)")
    parser.add_argument("--judge-budget", type=float, default=15.0, metavar="X",
                        help="a verdict's calls are tried again while less than X seconds have passed (ToolEval: 15)")
    add_order(parser)
    return parser


def convert_main(argv: list[str]) -> int:
    from umi_agent.passrate.convert import convert_dir

    args = convert_parser().parse_args(argv)
    if not args.answer_dir.is_dir():
        return fail(CONVERT_PROG, f"{args.answer_dir}: no such directory (expected ToolBench answer files)")
    conversion = convert_dir(args.answer_dir, args.method, args.order)
    import json

    files = {args.out: (json.dumps(conversion.dump(), indent=2) + "\n").encode("utf-8", "surrogatepass")}
    if conversion.rejects:
        files[args.out.with_suffix(".rejects.json")] = encode_json([r.model_dump() for r in conversion.rejects])
    try:
        write_files(files)
    except OSError as exc:
        return fail(CONVERT_PROG, f"{args.out}: cannot write ({exc.strerror or exc})")
    print(f"converted {len(conversion.answers)} answers of {args.method} to {args.out}"
          + (f"; {len(conversion.rejects)} rejected (listed in {args.out.with_suffix('.rejects.json')})" if conversion.rejects else "")
          + (f"; {len(conversion.replaced)} files repeated a query id (the later one kept)" if conversion.replaced else ""),
          file=sys.stderr)
    return 0


def judge_of(args: argparse.Namespace) -> Any:
    from umi_agent.passrate.judge import Judge, JudgeConfig

    if (args.judge_url is None) != (args.judge_model is None):
        raise InputFileError("give the judge's server and model together (--judge-url URL --judge-model NAME)")
    if args.judge_url is None:
        return None
    config = JudgeConfig(url=args.judge_url, model=args.judge_model, timeout_s=args.judge_timeout, attempts=args.judge_retries,
                         retry_wait_s=args.judge_retry_wait, budget_s=args.judge_budget)
    return Judge(config, args.judge_cache or args.out / "judge_cache.jsonl")


def score_main(argv: list[str]) -> int:
    from umi_agent.passrate.judge import JudgeError
    from umi_agent.passrate.report import run

    args = score_parser().parse_args(argv)
    try:
        return run(args, judge_of(args))
    except (InputFileError, JudgeError) as exc:
        return fail(PROG, exc)
    except OSError as exc:  # an output that cannot be written, an input that cannot be read
        return fail(PROG, f"{exc.filename or args.out}: {exc.strerror or exc}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:
        return convert_main(argv[1:])
    return score_main(argv)
