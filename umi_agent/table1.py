"""The paper's Table 1 from the metrics files of a reproduction: one row per training setup,
static (teacher-forced) columns then live-episode columns, as Markdown and as a bar chart.

Rows follow the paper's order (Single-LLM first, α-UMi with reuse last); every number comes from
`umi_agent.evaluate` (static, default mode) and `umi_agent.run` (live) metrics files. Every
column that is a rate (a count of successes over a count of trials: Plan ACC over scored steps,
Act. EM over scored calls, Hallu. over predicted calls, answered correctly and gave up over
episodes) carries its Wilson 95% interval, so that two rows are only read as different when
their intervals say so; Arg. F1 and ROUGE-L are means of graded scores, not rates, and have none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

#: Paper order of the rows (variant names of `umi_data.rendering.variants`).
ROW_ORDER = ("single", "one-stage", "multi-task", "no-reuse", "reuse")
#: (header, source, key, percent?)
COLUMNS = (
    ("Plan ACC", "static", "plan_em", True), ("Act. EM", "static", "action_em", True),
    ("Hallu.", "static", "hallu_rate", True), ("Arg. F1", "static", "f1", True), ("R-L", "static", "rouge", True),
    ("Answered correctly", "live", "answered_correctly", True), ("Gave up", "live", "gave_up", True),
    ("Halluc. calls", "live", "hallucinated_calls", False), ("Steps", "live", "mean_steps", False),
)
#: header -> (source, where its trial count is in the metrics file) for the columns that are rates
DENOMINATORS = {
    "Plan ACC": ("static", ("counts", "gold")), "Act. EM": ("static", ("counts", "action_scored")),
    "Hallu.": ("static", ("counts", "predicted_calls")), "Answered correctly": ("live", ("episodes",)), "Gave up": ("live", ("episodes",)),
}
Z95 = 1.959963984540054
CHART_COLUMNS = ("Plan ACC", "Act. EM", "Arg. F1", "R-L", "Answered correctly")
ROLE_INITIAL = {"planner": "P", "caller": "C", "summarizer": "S", "backbone": "B"}


def wilson(rate: float, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (`rate` = successes / `trials`): unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or 1 successes."""
    if trials <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * ((rate * (1 - rate) / trials + z * z / (4 * trials * trials)) ** 0.5) / denominator
    return max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half))  # rounding must not exclude the rate


def trials_of(metrics: Mapping[str, Any], path: tuple[str, ...]) -> int | None:
    """The trial count at `path` in a metrics file (a dict of counts is summed: Plan ACC's gold kinds)."""
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return sum(value.values()) if isinstance(value, Mapping) else value


def cell(value: Any, percent: bool, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return "-"
    if percent:
        text = f"{100 * value:.1f}"
        return f"{text} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else text
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def latency_cell(latency: Mapping[str, float]) -> str:
    """Milliseconds per model call by role, e.g. `P 812 · C 640 · S 903` (B: the backbone)."""
    return " · ".join(f"{ROLE_INITIAL.get(role, role)} {ms:.0f}" for role, ms in sorted(latency.items(), key=lambda kv: "PCSB".find(ROLE_INITIAL.get(kv[0], "?")))) or "-"


def rows(static: Mapping[str, Mapping[str, Any]], live: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per variant present, in paper order: its label and raw values by column header."""
    from umi_data.rendering.variants import get_variant

    sources = {"static": static, "live": live}
    table = []
    for variant in (v for v in ROW_ORDER if v in static or v in live):
        values = {header: sources[where].get(variant, {}).get(key) for header, where, key, _ in COLUMNS}
        intervals = {}
        for header, (where, path) in DENOMINATORS.items():
            trials = trials_of(sources[where].get(variant, {}), path)
            if values[header] is not None and trials:
                intervals[header] = wilson(values[header], trials)
        table.append({"variant": variant, "label": get_variant(variant).paper_row, "values": values, "intervals": intervals,
                      "latency_ms": live.get(variant, {}).get("latency_ms", {})})
    return table


def markdown(table: list[dict[str, Any]], caption: str = "") -> str:
    """The table in Markdown (percentages for rates, [Wilson 95% interval] after each), with a caption line under it."""
    headers = ["Method", *(h + (" %" if pct else "") for h, _, _, pct in COLUMNS), "Latency ms/call"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    for row in table:
        intervals = row.get("intervals", {})
        cells = [row["label"], *(cell(row["values"][h], pct, intervals.get(h)) for h, _, _, pct in COLUMNS), latency_cell(row["latency_ms"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\n" + caption if caption else "") + "\n"


def bar_chart(table: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Grouped bars: the chart columns (in %) for every row, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from umi_train.plots import save_figure

    figure, axes = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(len(table), 1)
    for index, row in enumerate(table):
        heights = [100 * (row["values"][c] or 0.0) for c in CHART_COLUMNS]
        positions = [column + (index - (len(table) - 1) / 2) * width for column in range(len(CHART_COLUMNS))]
        bounds = [row.get("intervals", {}).get(c) for c in CHART_COLUMNS]
        errors = [[max(h - 100 * b[0], 0.0) if b else 0.0 for h, b in zip(heights, bounds)],  # rounding may cross 0
                  [max(100 * b[1] - h, 0.0) if b else 0.0 for h, b in zip(heights, bounds)]]
        axes.bar(positions, heights, width, label=row["label"], yerr=errors, capsize=2, error_kw={"linewidth": 0.8})
    axes.set_xticks(range(len(CHART_COLUMNS)), CHART_COLUMNS)
    axes.set_ylabel("%")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.legend(fontsize="small", ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    figure.tight_layout()
    return save_figure(figure, path, dpi=120)


__all__ = ["COLUMNS", "ROW_ORDER", "bar_chart", "markdown", "rows", "wilson"]
