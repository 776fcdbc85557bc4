"""Pictures of training: every run's loss curve as RUN/loss.png, beside run.json.

A user looks at a curve before a number: whether the training loss fell, and whether the
held-out loss followed it. matplotlib (Agg, no display) is imported only when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

LOSS_PLOT = "loss.png"


def save_figure(figure: Any, path: Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as a PNG atomically (a temporary file renamed) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=dpi)
    plt.close(figure)
    tmp.replace(path)
    return path


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_plot(path: Path, losses: Sequence[dict[str, float]], eval_losses: Sequence[dict[str, float]], title: str) -> Path:
    """Training loss (per logged step) and eval loss (per evaluation) against the step."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 3.6))
    if losses:
        axes.plot([e["step"] for e in losses], [e["loss"] for e in losses], label="training loss", linewidth=1)
    if eval_losses:
        axes.plot([e["step"] for e in eval_losses], [e["eval_loss"] for e in eval_losses], "o-", label="held-out loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(title, fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def run_loss_plot(run_dir: Path, record: dict[str, Any]) -> Path:
    """RUN/loss.png from an sft run record."""
    training = record["training"]
    title = f"{'/'.join(record['data']['roles'])} ({record['config'].get('prompt_format', 'alpha-umi')}): {training['steps']} steps"
    return loss_plot(run_dir / LOSS_PLOT, training["loss_history"], training["eval_history"], title)


__all__ = ["LOSS_PLOT", "loss_plot", "pyplot", "run_loss_plot", "save_figure"]
