"""The canonical record: turn-order validation, outcomes, ids."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    TurnOrderError,
    UserTurn,
    check_turn_order,
    make_instruction_id,
    make_trajectory_id,
    outcome_of,
)

U = UserTurn(content="What is 2+2?")
P_CALL = PlannerTurn(thought="use the calculator", next="caller")
C = CallerTurn(name="add_for_calc", arguments={"a": 2, "b": 2}, raw_arguments='{"a": 2, "b": 2}')
O = ObservationTurn(response="4")
P_CONC = PlannerTurn(thought="done", next="conclusion")
A = ConclusionTurn(answer="4")
P_GIVE_UP = PlannerTurn(thought="cannot", next="give_up")
P_NONE = PlannerTurn(thought="hmm")


def make(turns, **kw) -> Trajectory:
    fields = dict(
        id="t-1", source="synthetic", instruction="What is 2+2?", instruction_id=make_instruction_id("What is 2+2?"),
        tools=[ToolSpec(name="add_for_calc")], turns=turns, outcome=outcome_of(turns),
    )
    return Trajectory(**{**fields, **kw})


@pytest.mark.parametrize(
    "turns,outcome",
    [
        ([U, P_CALL, C, O, P_CONC, A], "answer"),
        ([U, P_GIVE_UP], "give_up"),
        ([U, UserTurn(content="retry", diversity_prompt=True), P_NONE, P_CALL, C, O, U, P_CONC, A], "answer"),
        ([U, P_CONC, A, ObservationTurn(response=""), P_NONE, P_GIVE_UP], "give_up"),  # a refused Finish
        ([U, P_CALL, C, O], "unfinished"),
        ([U], "unfinished"),
    ],
)
def test_valid_sequences(turns, outcome) -> None:
    assert make(turns).outcome == outcome


@pytest.mark.parametrize(
    "turns,bad_index",
    [
        ([P_CALL, C, O], 0),  # must start with the user
        ([U, C, O], 1),  # a call without a planner that said caller
        ([U, P_CALL, O], 2),  # an observation without a call
        ([U, P_CALL, C, P_CONC], 3),  # a call must get its observation
        ([U, P_CONC, C], 2),  # the planner said conclusion, not caller
        ([U, P_CALL, A], 2),  # the planner said caller, not conclusion
        ([U, P_GIVE_UP, U], 2),  # nothing follows a give-up
        ([U, P_CONC, A, P_CALL], 3),  # only an observation may follow a conclusion
        ([U, P_NONE, C], 2),  # a thought without a decision does not call
    ],
)
def test_bad_order_names_first_bad_index(turns, bad_index) -> None:
    with pytest.raises(TurnOrderError) as caught:
        check_turn_order(turns)
    assert caught.value.index == bad_index
    with pytest.raises(ValidationError, match=f"turn {bad_index}:"):
        make(turns)


def test_outcome_must_match_turns() -> None:
    with pytest.raises(ValidationError, match="outcome is 'answer' but the turns end in 'give_up'"):
        make([U, P_GIVE_UP], outcome="answer")


def test_records_are_closed_and_typed() -> None:
    with pytest.raises(ValidationError, match="extra"):
        UserTurn(content="x", mood="happy")
    with pytest.raises(ValidationError):
        PlannerTurn(thought="x", next="summarizer")
    with pytest.raises(ValidationError):
        make([])  # no turns at all


def test_turn_union_discriminates_on_role() -> None:
    doc = make([U, P_CALL, C, O, P_CONC, A]).model_dump(mode="json")
    again = Trajectory.model_validate(doc)
    assert [type(t) for t in again.turns] == [UserTurn, PlannerTurn, CallerTurn, ObservationTurn, PlannerTurn, ConclusionTurn]
    assert again == make([U, P_CALL, C, O, P_CONC, A])


def test_instruction_id_ignores_cosmetic_differences() -> None:
    base = make_instruction_id("Find hotels in Paris.")
    assert make_instruction_id("  find  hotels in\nPARIS. \n") == base
    assert make_instruction_id("Find hotels in Rome.") != base
    assert len(base) == 16 and int(base, 16) >= 0


def test_trajectory_id_is_stable_and_content_sensitive() -> None:
    first = make_trajectory_id("toolbench", "G1_answer/1_x.json", "$", b"{}")
    assert first == make_trajectory_id("toolbench", "G1_answer/1_x.json", "$", "{}")
    assert first.startswith("toolbench-")
    assert first != make_trajectory_id("toolbench", "G2_answer/1_x.json", "$", b"{}")
    assert first != make_trajectory_id("toolbench", "G1_answer/1_x.json", "$", b"{ }")
    assert first != make_trajectory_id("toolbench", "G1_answer/1_x.json", "$[1]", b"{}")
