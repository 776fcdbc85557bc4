"""`python -m umi_data COMMAND`: the data-side command line (imports no torch/transformers/peft)."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from umi_data.building.fields import BUILD_FIELDS, DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED
from umi_data.plumbing.cli import Parser, add_command, add_commands, fail, interrupted, prog_name
from umi_data.sources import CATALOG
from umi_data.synth import cli as synth_cli

# Commands import what they need when they run: `--help` must not pay for pyarrow, pydantic,
# polars or duckdb (a test checks which modules it imports).
EXIT_REJECTS = 1
PACKAGE, SCRIPT = "umi_data", "umi-data"
DEMO_OUT = Path("sample-corpus")
FORCE_HELP = "write into a non-empty --out that this command did not write, beside its files (never replacing one)"


def _source_help() -> str:
    return "\n".join(f"  {name:<17} {entry.description}" for name, entry in CATALOG.items())


def _prog() -> str:
    return prog_name(PACKAGE, SCRIPT)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=_prog(), description="Typed tool-use trajectories and α-UMi corpora.", quiet=False)
    commands = add_commands(parser)
    sources = f"sources:\n{_source_help()}"

    fields = BUILD_FIELDS
    build = add_command(commands, "build", "read source files into a corpus directory",
                        "Read source files into a corpus directory: trajectories, rejects, role corpora, data card.", epilog=sources)
    build.add_argument("source", metavar="SOURCE", help="source format: one of the sources listed below")
    build.add_argument("inputs", metavar="PATH", nargs="+", help=fields["inputs"])
    build.add_argument("--out", required=True, type=Path, metavar="DIR", help="corpus directory to write (a shard directory with --shard)")
    build.add_argument("--exclude-test-ids", nargs="+", default=[], metavar="PATH", help=fields["exclude_test_ids"])
    build.add_argument("--strict", action="store_true", help=fields["strict"])
    build.add_argument("--compat", choices=["alpha-umi"], default=None, help=fields["compat"])
    build.add_argument("--seed", "--split-seed", dest="split_seed", type=int, default=DEFAULT_SPLIT_SEED, metavar="N", help=fields["split_seed"])
    build.add_argument("--split-ratio", type=float, default=DEFAULT_SPLIT_RATIO, metavar="X", help=fields["split_ratio"])
    build.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                       help="processes converting and rendering; the output does not depend on it (default: the machine's cores)")
    build.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                       help="convert only the I-th of N runs of the input files into a shard directory, for `merge`")
    build.add_argument("--force", action="store_true", help=FORCE_HELP)

    merge = add_command(commands, "merge", "join the shard directories of `build --shard I/N` into one corpus",
                        "Join the shard directories of `build --shard I/N` into one corpus. The corpus equals, byte for byte, "
                        "one `build` over all the inputs.")
    merge.add_argument("shards", metavar="DIR", nargs="+", type=Path, help="the N shard directories (any order)")
    merge.add_argument("--out", required=True, type=Path, metavar="DIR", help="corpus directory to write")

    validate = add_command(commands, "validate", "check raw source files against their JSON Schema",
                           "Check raw source files against their JSON Schema; every error is listed with its JSON path.", epilog=sources)
    validate.add_argument("source", metavar="SOURCE", help="source format name (see the list below)")
    validate.add_argument("inputs", metavar="PATH", nargs="+", help="files or directories to check")

    schemas = add_command(commands, "schemas", "write the JSON Schema documents into a directory")
    schemas.add_argument("--out", type=Path, default=Path("schemas"), metavar="DIR", help="directory to write")

    from umi_data.rendering.variants import EXPORT_FORMATS, VARIANTS

    variants = "\n".join(f"  {v.name:<11} {v.paper_row}: {v.description}" for v in VARIANTS.values())
    export = add_command(commands, "export", "write one training variant of a corpus (stage1/, stage2/) for other trainers",
                         f"Write the training files of one of the paper's setups.\n\nvariants:\n{variants}")
    export.add_argument("corpus", metavar="DIR", type=Path, help="corpus directory written by `build`")
    export.add_argument("--variant", required=True, choices=list(VARIANTS), help="which of the paper's training setups")
    export.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write (new, empty, or a previous export)")
    export.add_argument("--force", action="store_true", help=FORCE_HELP)
    export.add_argument(
        "--format", default="jsonl", choices=EXPORT_FORMATS,
        help="jsonl: example rows with all columns; trl: prompt/completion JSONL; llamafactory: alpaca JSON + dataset_info.json; "
        "alpha-umi: the official trainer's {input, target} arrays; pre-tokenized ids: `umi-train export`. "
        "Chat formats (the backbone part as whole trajectories, role parts as one chat per example; what a format "
        "cannot express goes to rejects.jsonl, counted): openai: fine-tuning JSONL with tools; trl-chat: a datasets "
        "directory with messages and tools; llamafactory-sharegpt: sharegpt with function_call/observation + "
        "dataset_info.json; hermes: ChatML with <tools>, <tool_call>, <tool_response>",
    )
    export.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="openai: reject examples over N tokens (counted by an upper bound, UTF-8 bytes; default 65536)")

    query = add_command(
        commands, "query", "run SQL over corpus directories (views: trajectories, turns, tool_calls, tools, examples, rejects)",
        "Run one SQL statement over DuckDB views of one or more corpus directories. Views: trajectories, "
        "turns, tool_calls, tools, examples, rejects (each with a `corpus` column). Recipes: docs/recipes.md.",
    )
    query.usage = (f"{parser.prog} query [-h] [--version] [--quiet] [--format {{table,csv,json}}] [--max-rows N] [--out FILE] "
                   "[--timeout X] [--memory-limit X] [--file FILE] DIR [DIR ...] [SQL | -]")
    query.add_argument("args", metavar="DIR [DIR ...] SQL", nargs="+",
                       help="one or more corpus directories, then the SQL (the last argument; `-` reads it from stdin)")
    query.add_argument("--file", default=None, metavar="FILE", help="read the SQL from FILE (`-`: stdin); every argument is then a directory")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table",
                       help="table (aligned text), csv, or json (one array of row objects)")
    query.add_argument("--max-rows", type=_positive, default=1000, metavar="N",
                       help="print at most N rows (all are counted and the total reported; --out writes all)")
    query.add_argument("--out", type=Path, default=None, metavar="FILE",
                       help="write every row to a new FILE instead of printing: .parquet, .csv, .json (one array) or .jsonl")
    query.add_argument("--timeout", type=_positive_number, default=60.0, metavar="X", help="stop the query after X seconds")
    query.add_argument("--memory-limit", type=_positive_number, default=2.0, metavar="X", help="gigabytes of memory the query may use (e.g. 0.5)")

    card = add_command(commands, "card", "write the data card of a corpus directory again: README.md and card/")
    card.add_argument("corpus", metavar="DIR", type=Path, help="corpus directory written by `build`")

    cache = add_command(commands, "tool-cache", "index recorded tool responses into a cache for `python -m umi_agent.toolserver`",
                        "Index the tool responses recorded in corpora, ToolBench answer files and StableToolBench cache directories "
                        "(tool_response_cache/{Category}/{tool}_for_{Category}/{api}.json) into one SQLite cache keyed by "
                        "(category, tool, api, arguments), with a data card.")
    cache.add_argument("inputs", metavar="PATH", nargs="+", type=Path,
                       help="corpus directories (or trajectories.parquet), answer files or directories, StableToolBench cache directories; "
                            "the first recording of a key is the one served")
    cache.add_argument("--out", required=True, type=Path, metavar="DIR", help="cache directory to write")
    cache.add_argument("--categories", nargs="+", default=[], metavar="PATH",
                       help="where the categories of ToolBench tools come from (answer files do not say): query files with api_list "
                            "(ToolBench instruction/*.json, StableToolBench solvable_queries) or {Category}/{tool}.json directories "
                            "(toolenv/tools); without one, calls are filed under the unknown category, which every request falls back to")
    cache.add_argument("--force", action="store_true", help=FORCE_HELP)

    synth_cli.add_parser(commands)

    demo = add_command(commands, "demo", "build a corpus from the small built-in sample and print its summary")
    demo.add_argument("--out", type=Path, default=DEMO_OUT, metavar="DIR", help="corpus directory to write")
    return parser


def _shard(text: str) -> tuple[int, int]:
    from umi_data.building.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_build(args: argparse.Namespace) -> int:
    from umi_data.building.build import BuildConfig, build_corpus, reject_listing, summary_line

    config = BuildConfig(
        source=args.source, inputs=args.inputs, exclude_test_ids=args.exclude_test_ids, strict=args.strict,
        compat=args.compat, split_seed=args.split_seed, split_ratio=args.split_ratio,
    )
    progress = False if args.quiet else None
    result = build_corpus(config, args.out, progress=progress, workers=max(args.workers, 1), shard=args.shard, force=args.force)
    print(summary_line(result))
    _say_kept(result)
    if not result.manifest["counts"]["accepted"] and args.shard is None:  # a shard's part may hold only rejects
        print(f"umi-data build: error: no record was accepted (of {result.manifest['counts']['read']} read); "
              f"is {config.source} the right source for these files? (rejects: {result.out / 'rejects.jsonl'})", file=sys.stderr)
        return EXIT_REJECTS
    if config.strict and result.manifest["counts"]["rejected"]:
        print(f"--strict: {result.manifest['counts']['rejected']} record(s) rejected:", file=sys.stderr)
        print(reject_listing(result), file=sys.stderr)
        return EXIT_REJECTS
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from umi_data.building.build import summary_line
    from umi_data.building.shards import merge_shards

    result = merge_shards(args.shards, args.out)
    print(summary_line(result))
    _say_kept(result)
    return 0


def _say_kept(result: Any) -> None:
    """One line naming the files in --out that umi did not write: kept, and not part of the corpus."""
    if result.kept:
        names = ", ".join(result.kept[:5]) + (f" and {len(result.kept) - 5} more" if len(result.kept) > 5 else "")
        print(f"{_prog()}: kept {len(result.kept)} file(s) in {result.out} that umi did not write (not part of the corpus): {names}",
              file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from umi_data.schema_docs import reject_counts, validate_files
    from umi_data.sources import SOURCES

    checked, problems = validate_files(args.source, args.inputs)
    for problem in problems:
        print(problem)
    files_with_problems = len({p.file for p in problems})
    rejects = reject_counts(problems)
    by_reason = f" ({', '.join(f'{reason}: {n}' for reason, n in sorted(rejects.items()))})" if rejects else ""
    print(f"{checked} file(s) checked against {SOURCES[args.source].schema}: {files_with_problems} with problems, {len(problems)} problem(s); "
          f"build would reject {sum(rejects.values())} record(s){by_reason}")
    return EXIT_REJECTS if problems else 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from umi_data.schema_docs import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from umi_data.exports.export import export_variant

    manifest = export_variant(args.corpus, args.variant, args.out, args.format, force=args.force, max_tokens=args.max_tokens)
    for stage, entry in manifest["stages"].items():
        files = ", ".join(f"{f['path']} ({f['rows']} examples, {f['instructions']} instructions)" for f in entry["files"].values())
        print(f"{stage} (from {entry['init']}, split {entry['split']}): {files}")
    if "rejects" in manifest:
        by_reason = ", ".join(f"{reason} {n}" for reason, n in manifest["rejects"]["by_reason"].items())
        print(f"rejected {manifest['rejects']['total']} example(s) this format cannot express{': ' + by_reason if by_reason else ''} "
              f"({args.out / manifest['rejects']['file']})")
    print(f"variant {manifest['variant']} ({manifest['paper_row']}), format {manifest['format']} -> {args.out}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from umi_data.corpus.query import read_sql, run_query

    directories, sql = list(args.args), None
    if args.file is not None:
        sql = read_sql(args.file)
    elif len(directories) < 2:
        return fail(f"{_prog()} query", "give at least one corpus directory, then the SQL (or --file FILE)")
    else:
        sql = directories.pop()
        sql = read_sql("-") if sql == "-" else sql
    result = run_query(directories, sql, args.format, max_rows=args.max_rows, timeout=args.timeout,
                       memory_limit=f"{args.memory_limit:g}GB", out=args.out)
    sys.stdout.write(result.text)
    if result.note:
        print(f"{_prog()} query: {result.note}", file=sys.stderr)
    return 0


def _positive_number(text: str) -> float:
    """A positive, finite number (seconds, gigabytes)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def cmd_card(args: argparse.Namespace) -> int:
    from umi_data.building.manifest import rewrite_card

    for path in rewrite_card(args.corpus):
        print(path)
    return 0


def cmd_tool_cache(args: argparse.Namespace) -> int:
    from umi_data.toolcache.build import build_tool_cache

    card = build_tool_cache(args.inputs, args.out, args.categories, force=args.force)
    print(f"{card['keys']} keys ({card['stored_responses']} responses) of {card['apis']} apis, {card['tools']} tools, "
          f"{card['categories']} categories; {card['duplicates']} duplicates, {card['conflicts']} conflicts kept; "
          f"not filed: {sum(card['calls_not_filed'].values())} calls, {sum(card['files_rejected'].values())} files -> {args.out}")
    return 0 if card["keys"] or not sum(card["files_rejected"].values()) else EXIT_REJECTS


def cmd_demo(args: argparse.Namespace) -> int:
    from umi_data.building.build import BuildConfig, build_corpus, reject_listing, summary_line

    sample = resources.files("umi_data") / "samples" / "toolbench" / "answer"
    config = BuildConfig(source="toolbench", inputs=[str(sample)])
    result = build_corpus(config, args.out, progress=False)
    counts = result.manifest["counts"]
    print("umi demo: the built-in ToolBench-format sample")
    print(f"  {summary_line(result)}")
    print(f"  turns: {', '.join(f'{role} {n}' for role, n in counts['turns'].items())}")
    print(f"  hallucinated calls: {counts['hallucinated_calls']}")
    if result.rejects:
        print("  rejects:\n" + reject_listing(result))
    examples = result.manifest["examples"]
    print("  role examples: " + ", ".join(f"{role} {c['total']} (A {c['A']}, B {c['B']})" for role, c in examples.items()))
    print(f"  corpus: {result.out} ({len(result.manifest['files'])} files and manifest.json)")
    return 0


#: The commands that read or write a whole corpus, however large: Arrow's leaner pool (umi_data/building/memory.py).
LEAN_MEMORY_COMMANDS = frozenset({"build", "merge", "card"})
COMMANDS = {"build": cmd_build, "merge": cmd_merge, "validate": cmd_validate, "schemas": cmd_schemas, "export": cmd_export, "query": cmd_query, "card": cmd_card, "synth": synth_cli.run, "demo": cmd_demo,
            "tool-cache": cmd_tool_cache}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in LEAN_MEMORY_COMMANDS:
        from umi_data.building.memory import use_lean_memory_pool

        use_lean_memory_pool()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return interrupted(f"{parser.prog} {args.command}")
    except Exception as exc:
        if not isinstance(exc, _usage_errors()):
            raise
        return fail(f"{parser.prog} {args.command}", exc)


def _usage_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's: one line and exit 2, no traceback (imported once one is raised)."""
    from umi_data.building.build import ExclusionListError
    from umi_data.corpus.layout import CorpusNotFoundError
    from umi_data.exports.export import ExportError
    from umi_data.plumbing.outdir import OutDirError
    from umi_data.corpus.query import QueryError
    from umi_data.building.shards import ShardError
    from umi_data.sources import InputPathError, UnknownSourceError
    from umi_data.toolcache.build import ToolCacheInputError
    from umi_data.toolcache.catalog import CatalogError
    from umi_data.toolcache.store import CacheError

    return (ToolCacheInputError, CatalogError, CacheError, InputPathError, UnknownSourceError, ExclusionListError, ExportError, CorpusNotFoundError, QueryError, ShardError, OutDirError, OSError)


if __name__ == "__main__":
    sys.exit(main())
