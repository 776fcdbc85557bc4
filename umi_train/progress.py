"""Progress lines for training: what a log file or a pipe (`make demo`) shows as it happens.

A tqdm bar is right on a terminal; written to a pipe it is either off or a stream of carriage
returns that appears at once. So when there is no bar (not a terminal) and `--quiet` is not
given, a run prints one line about every tenth of its steps and one per evaluation. Imported
only by the training code (it needs transformers).
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class ProgressLines(TrainerCallback):
    """`PROG: LABEL: step 40/400, loss 3.1234 (12 s)` about `lines` times per run, and the eval loss."""

    def __init__(self, prog: str, label: str, lines: int = 10) -> None:
        self.prog, self.label, self.lines = prog, label, lines
        self.start, self.every, self.next_step = 0.0, 1, 1

    def _print(self, state: Any, text: str) -> None:
        if state.is_world_process_zero:
            print(f"{self.prog}: {self.label}: {text} ({time.perf_counter() - self.start:.0f} s)", flush=True)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = time.perf_counter()
        self.every = max(1, state.max_steps // self.lines)
        self.next_step = state.global_step + self.every
        self._print(state, f"training from step {state.global_step} to {state.max_steps}")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs and (state.global_step >= self.next_step or state.global_step == state.max_steps):
            self.next_step = state.global_step + self.every
            self._print(state, f"step {state.global_step}/{state.max_steps}, loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            self._print(state, f"step {state.global_step}/{state.max_steps}, eval loss {logs['eval_loss']:.4f}")
