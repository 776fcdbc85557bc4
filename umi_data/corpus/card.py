"""The data card of a corpus directory: `README.md` (HF dataset-card YAML + tables), the plots
under `card/`, and `card/stats.json` (the numbers behind both).

Written by `build` and by `python -m umi_data card DIR`. Everything in it comes from the
manifest and the corpus files, never from the machine or the time, so the same corpus gives the
same card (paths are shown relative to the corpus).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from umi_data.corpus import stats
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS
from umi_data.plumbing.write import atomic_open, atomic_path, file_entry

CARD = "README.md"
CARD_DIR = "card"
PLOTS = {"lengths": "card/lengths.png", "steps": "card/steps.png", "tools": "card/tools.png"}
STATS = "card/stats.json"
TOP_TOOLS = 20
LISTED_INPUTS = 20
#: the config `datasets.load_dataset(DIR)` loads when no config name is given
DEFAULT_CONFIG = "trajectories"
#: Licences of the data each source carries (HF `license` ids); mixed corpora say "other".
SOURCE_LICENSES = {"toolbench": "apache-2.0", "toolalpaca": "apache-2.0", "synthetic": "apache-2.0", "agent_run": "apache-2.0"}
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def write_card(directory: Path, manifest: dict[str, Any], lengths: pl.DataFrame | None = None,
               summary: stats.TurnSummary | None = None) -> dict[str, Any]:
    """Write README.md, card/stats.json and the plots; return their manifest file entries.
    `lengths` and `summary`: the builder's `stats.card_lengths` and `TurnCounter` summary of what
    it wrote (else read from the corpus)."""
    figures = _stats_frames(directory, lengths, summary)
    numbers = stats.corpus_stats(directory, summary=figures["summary"], lengths=figures["lengths"])
    entries = {}
    with atomic_open(directory / STATS) as handle:
        handle.write(orjson.dumps(numbers, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    entries[STATS] = file_entry(directory / STATS)
    for name, relative in PLOTS.items():
        with atomic_path(directory / relative) as tmp:
            _PLOTTERS[name](figures, tmp)
        entries[relative] = file_entry(directory / relative)
    with atomic_open(directory / CARD, "w") as handle:
        handle.write(render_card(manifest, numbers, listed_inputs(directory, manifest)))
    entries[CARD] = file_entry(directory / CARD)
    return entries


def _stats_frames(directory: Path, lengths: pl.DataFrame | None, summary: stats.TurnSummary | None) -> dict[str, Any]:
    summary = summary or stats.turn_summary(directory)
    return {
        "summary": summary,
        "lengths": lengths if lengths is not None else stats.example_lengths(directory, with_split=False),
        "steps": summary.groups,
        "tools": summary.calls_per_tool,
    }


# --- README.md --------------------------------------------------------------------------------


def render_card(manifest: dict[str, Any], numbers: dict[str, Any], listed: list[dict[str, Any]]) -> str:
    """The README.md text; `listed` are the first input files (`listed_inputs`)."""
    return "\n".join([*_front_matter(manifest, numbers), *_body(manifest, numbers, listed)]) + "\n"


def _front_matter(manifest: dict[str, Any], numbers: dict[str, Any]) -> list[str]:
    sources = sorted(numbers["counts"]["by_source"]) or [manifest["config"]["source"]]
    licenses = {SOURCE_LICENSES.get(source, "other") for source in sources}
    lines = [
        "---",
        f"pretty_name: umi corpus ({', '.join(sources)})",
        f"license: {licenses.pop() if len(licenses) == 1 else 'other'}",
        "size_categories:",
        f"- {_size_category(numbers['counts']['trajectories'])}",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- tool-use",
        "- agents",
        "- function-calling",
        "- alpha-umi",
        "configs:",
    ]
    for name, path in [("trajectories", "trajectories.parquet")] + [(r, f"{ROLE_PATHS[r]}.parquet") for r in EXAMPLE_ROLES]:
        # `datasets` keys its cache of a local directory by the directory's name and this YAML
        # only (not the files' contents or times): without the file's hash here, a rebuilt corpus,
        # or another corpus directory of the same name, loads stale cached rows.
        fingerprint = manifest["files"][path]["sha256"]
        lines += [f"- config_name: {name}", f"  description: 'umi {name} corpus, sha256 {fingerprint}'",
                  *(["  default: true"] if name == DEFAULT_CONFIG else []),  # load_dataset(DIR) without a config name
                  "  data_files:", "  - split: train", f"    path: {path}"]
    return lines + ["---", ""]


def _size_category(n: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if n < limit), "n>1M")


def _body(manifest: dict[str, Any], numbers: dict[str, Any], listed: list[dict[str, Any]]) -> list[str]:
    config, counts = manifest["config"], manifest["counts"]
    mode = f"compat mode `{config['compat']}` (the official α-UMi preprocessing, quirks included)" if config.get("compat") else "umi's default mode (the official preprocessing's bugs fixed; listed in docs/differences.md of the umi repository)"
    lines = [
        f"# umi corpus: {', '.join(sorted(numbers['counts']['by_source']) or [config['source']])}",
        "",
        "Tool-use trajectories as typed records, and the role corpora of the α-UMi planner / caller /"
        " summarizer agents (\"Small LLMs Are Weak Tool Learners: A Multi-LLM Agent\"): the global corpus"
        " (`backbone`) and the local ones (`planner`, `caller`, `summarizer`), each example tagged with"
        " an instruction split (A/B) for the paper's training variants.",
        "",
        "```python",
        "import datasets",
        'planner = datasets.load_dataset("path/to/this/corpus", "planner", split="train")',
        "```",
        "",
        "## How it was built",
        "",
        f"umi {manifest['umi_version']}, source `{config['source']}`, {mode}; instruction split seed"
        f" {config['split_seed']}, share of split A {config['split_ratio']}.",
        "",
        *_inputs_lines(manifest, listed),
        "",
        "## Counts",
        "",
        "| read | accepted | rejected | answered | gave up | unfinished | hallucinated calls |",
        "|---|---|---|---|---|---|---|",
        f"| {counts['read']} | {counts['accepted']} | {counts['rejected']} | {counts['outcomes']['answer']}"
        f" | {counts['outcomes']['give_up']} | {counts['outcomes']['unfinished']} | {counts['hallucinated_calls']} |",
        "",
        *_table(["reject reason", "records"], sorted(counts["rejected_by_reason"].items()), empty="No record was rejected."),
        "",
        *_table(["role", "examples", "split A", "split B"],
                [(r, c["total"], c["A"], c["B"]) for r, c in manifest.get("examples", {}).items()]),
        "",
        "## Lengths (characters)",
        "",
        *_table(["role", "part", "examples", "mean", "p50", "p90", "p99", "max"],
                [(r["role"], r["measure"].split("_")[0], r["examples"], r.get("mean", "-"), r.get("p50", "-"),
                  r.get("p90", "-"), r.get("p99", "-"), r.get("max", "-")) for r in numbers["lengths"]]),
        "",
        f"![Lengths of inputs and targets per role]({PLOTS['lengths']})",
        "",
        "## Steps and tools",
        "",
        *_table(["planner decisions", "trajectories"], [(s["steps"], s["trajectories"]) for s in numbers["steps"]]),
        "",
        f"![Steps per trajectory]({PLOTS['steps']})",
        "",
        *_table(["tool", "calls"], [(t["name"], t["calls"]) for t in numbers["calls_per_tool"][:TOP_TOOLS]], empty="No tool calls."),
        "",
        f"![Calls per tool]({PLOTS['tools']})",
    ]
    return lines


def _inputs_lines(manifest: dict[str, Any], listed: list[dict[str, Any]]) -> list[str]:
    inputs = manifest["inputs"]
    lines = [f"Inputs: {inputs['files']} file(s), {inputs['bytes']} bytes, combined sha256 `{inputs['sha256']}`"
             f" (sha256 over the sorted `file\\0sha256` lines; every file's hash is in {inputs['list']})."]
    if manifest.get("exclusion_lists"):
        lines.append("Test-id exclusion lists: " + ", ".join(f"`{e['file']}` ({e['ids']} ids)" for e in manifest["exclusion_lists"]) + ".")
    lines += ["", *_table(["input file", "sha256"], [(f"`{i['file']}`", f"`{i['sha256'][:16]}…`") for i in listed])]
    if inputs["files"] > LISTED_INPUTS:
        lines.append(f"\n… and {inputs['files'] - LISTED_INPUTS} more.")
    return lines


def listed_inputs(directory: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The first `LISTED_INPUTS` entries of the corpus's input list (inputs.jsonl)."""
    with open(directory / manifest["inputs"]["list"], "rb") as handle:
        return [orjson.loads(line) for line in islice(handle, LISTED_INPUTS)]


def _table(header: list[str], rows: list[Any], empty: str | None = None) -> list[str]:
    if not rows and empty is not None:
        return [empty]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]


# --- plots ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure: Any, path: Path) -> None:
    # No "Software" tag: the bytes depend on the plotted data, not on the matplotlib version string.
    figure.savefig(path, format="png", metadata={"Software": None})


def _plot_lengths(frames: dict[str, pl.DataFrame], path: Path) -> None:
    import numpy

    figure = _figure(10, 6.5)
    axes = figure.subplots(2, 2)
    lengths = frames["lengths"]
    for ax, role in zip(axes.flat, EXAMPLE_ROLES):
        part = lengths.filter(pl.col("role") == role)
        if part.height:
            # Log-spaced bins: targets (tens of characters) and inputs (thousands) both stay readable.
            top = max(int(part["input_chars"].max()), int(part["target_chars"].max()), 10)
            low = max(min(int(part["input_chars"].min()), int(part["target_chars"].min())), 1) * 0.8
            bins = [low * (top * 1.01 / low) ** (i / 40) for i in range(41)]
            for column, label in (("input_chars", "input"), ("target_chars", "target")):
                # one `stairs` artist per series instead of 40 bar patches: 4x faster to draw
                heights, edges = numpy.histogram(numpy.maximum(part[column].to_numpy(), 1), bins=bins)
                ax.stairs(heights, edges, fill=True, alpha=0.6, label=label)
            ax.set_xscale("log")
            ax.minorticks_off()  # log-axis minor ticks cost most of the drawing time
            ax.legend()
        ax.set_title(f"{role} ({part.height} examples)")
        ax.set_xlabel("characters (log scale)")
        ax.set_ylabel("examples")
    figure.suptitle("Example lengths per role")
    _save(figure, path)


def _plot_steps(frames: dict[str, pl.DataFrame], path: Path) -> None:
    figure = _figure(8, 4.5)
    ax = figure.subplots()
    steps = frames["steps"]  # trajectories per (source, outcome, steps)
    top = max(steps["steps"].to_list() or [0])
    bottom = [0] * (top + 1)
    for outcome in ("answer", "give_up", "unfinished"):
        heights = [0] * (top + 1)
        for n, k in steps.filter(pl.col("outcome") == outcome).select("steps", "trajectories").iter_rows():
            heights[n] += k
        if any(heights):
            ax.bar(range(top + 1), heights, bottom=bottom, label=outcome)
            bottom = [b + h for b, h in zip(bottom, heights)]
    first = min(steps["steps"].to_list() or [0])
    ax.set_xlim(first - 0.6, top + 0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("planner decisions per trajectory")
    ax.set_ylabel("trajectories")
    ax.set_title("Steps per trajectory, by outcome")
    if steps.height:
        ax.legend()
    _save(figure, path)


def _plot_tools(frames: dict[str, pl.DataFrame], path: Path) -> None:
    tools = frames["tools"].head(TOP_TOOLS)
    figure = _figure(9, 1.5 + 0.32 * max(tools.height, 1))
    ax = figure.subplots()
    names, calls = tools["name"].to_list()[::-1], tools["calls"].to_list()[::-1]
    ax.barh(range(len(names)), calls)
    ax.set_yticks(range(len(names)), labels=names, fontsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("calls")
    ax.set_title(f"Calls per tool (top {min(TOP_TOOLS, frames['tools'].height)} of {frames['tools'].height})")
    _save(figure, path)


_PLOTTERS = {"lengths": _plot_lengths, "steps": _plot_steps, "tools": _plot_tools}

__all__ = ["CARD", "PLOTS", "STATS", "render_card", "write_card"]
