"""The four official α-UMi training files built from stage-2 records, quirks included.

Each record is `{tools, history, input, target}` (../shared/FORMATS.md §4). Reproduced as the
shipped `train_*.json` show them, bugs and all, because the published models were trained on
exactly these inputs:

- backbone: one record per assistant turn; a give-up reuses the backbone `input` computed last
  (the official loop never recomputes it for give-ups). The shipped files only show give-ups
  after another assistant turn of the same record; `training_files` carries the stale input
  across records like a plain loop variable would, and for a give-up with nothing before it
  at all the fresh input is used (the official script raises there; compat builds reject such
  a record, see `umi_data.rendering.compat.official_failure`).
- planner: one record per assistant turn, except steps whose caller turn names
  `invalid_hallucination_function_name` (those stay in the history).
- caller: one record per caller turn except hallucinated ones; its prompt leaves hallucinated
  calls out of the history text (their observations stay), its `history` field keeps them.
- summarizer: one record per conclusion whose answer is not `"none"`; its prompt leaves those
  `none` conclusions out of the history text, its `history` field keeps them.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from umi_data.rendering.render import OFFICIAL, backbone_target, role_records

TRAINING_FILES = ("backbone", "planner", "caller", "summarizer")

__all__ = ["TRAINING_FILES", "training_records", "training_files", "backbone_target"]

def training_files(stage2_records: Iterable[Mapping[str, Any]], family: str = "toolbench") -> dict[str, list[dict[str, Any]]]:
    """All four training files for a list of stage-2 records, in the official order, with the
    stale backbone input carried from one record to the next."""
    files: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAINING_FILES}
    for record in stage2_records:
        stale = files["backbone"][-1]["input"] if files["backbone"] else None
        for name, rows in training_records(record, family, stale_backbone_input=stale).items():
            files[name].extend(rows)
    return files


def training_records(
    stage2: Mapping[str, Any], family: str = "toolbench", *, stale_backbone_input: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`{backbone, planner, caller, summarizer}` records of one stage-2 record, official policy.

    `stale_backbone_input` is the backbone input the official loop computed last before this
    record; a give-up that is the record's first assistant turn reuses it (official bug)."""
    return role_records(
        stage2["conversations"], stage2["tools"], family, policy=OFFICIAL, stale_backbone_input=stale_backbone_input
    )
