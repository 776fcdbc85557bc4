"""umi_data: typed tool-use trajectories and the α-UMi role corpora built from them.

Importing this package never imports torch, transformers or peft, and imports nothing else
until a name is used: `python -m umi_data --help` stays fast.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "CallerTurn",
    "ConclusionTurn",
    "ObservationTurn",
    "PlannerTurn",
    "Reject",
    "RejectReason",
    "ToolSpec",
    "Trajectory",
    "TurnOrderError",
    "UserTurn",
    "check_turn_order",
    "load_corpus",
    "make_instruction_id",
    "outcome_of",
    "read_trajectories",
    "__version__",
]

_LAZY = {"load_corpus": "umi_data.corpus.layout", "read_trajectories": "umi_data.corpus.rows"}


def __getattr__(name: str) -> Any:
    import importlib

    if name in __all__ and name != "__version__":
        return getattr(importlib.import_module(_LAZY.get(name, "umi_data.core")), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
