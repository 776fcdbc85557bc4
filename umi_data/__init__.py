"""umi_data: typed tool-use trajectories and the α-UMi role corpora built from them.

Importing this package never imports torch, transformers or peft.
"""

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    Reject,
    RejectReason,
    ToolSpec,
    Trajectory,
    TurnOrderError,
    UserTurn,
    check_turn_order,
    make_instruction_id,
    outcome_of,
)
from umi_data.corpus import load_corpus
from umi_data.rows import read_trajectories

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
