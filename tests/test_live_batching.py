"""Live episodes played together (`run --batch-size N`, `umi_agent.batching`): their waiting
model calls are generated in one left-padded batch per role, and the episodes are exactly those
of a one-at-a-time run (greedy decoding, tiny models of a real GLPFT run)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from umi_agent.batching import StepBatcher, play_batched
from umi_agent.run import agent_from_run, play, read_tasks
from umi_train.testing import single_thread, tiny_glpft_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    single_thread()
    return tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft")  # shared with test_agent_end_to_end


class Recorder:
    """A model that answers with the prompt's length and records the size of every batch."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate_batch(self, prompts: list[str]) -> list[str]:
        self.batches.append(len(prompts))
        return [str(len(prompt)) for prompt in prompts]


def test_the_batcher_answers_when_every_player_waits() -> None:
    model, batcher = Recorder(), StepBatcher(players=3)
    answers: dict[int, str] = {}

    def player(n: int) -> None:
        answers[n] = batcher.generate(model, "x" * n)
        batcher.leave()

    threads = [threading.Thread(target=player, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == {1: "1", 2: "2", 3: "3"} and model.batches == [3]


def test_a_model_failure_reaches_every_episode_of_the_batch() -> None:
    from umi_agent.loop import SingleAgent

    class Broken:
        def generate_batch(self, prompts: list[str]) -> list[str]:
            raise RuntimeError("model down")

    with pytest.raises(RuntimeError, match="model down"):
        play_batched(SingleAgent(Broken()), ["a", "b"], lambda agent, index, task: agent.backbone.generate(task), 2)


@pytest.mark.parametrize("variant", ["reuse", "single"])
def test_batched_episodes_equal_one_at_a_time(runs, variant, monkeypatch) -> None:
    from umi_agent.backends import TransformersModel

    tasks = read_tasks(runs["root"] / "heldout" / "tasks.jsonl")
    agent = agent_from_run(runs[variant], max_steps=3, max_new_tokens=16)
    alone = play(agent, tasks)
    sizes: list[int] = []
    original = TransformersModel.generate_batch
    monkeypatch.setattr(TransformersModel, "generate_batch", lambda self, prompts: sizes.append(len(prompts)) or original(self, prompts))
    together = play(agent, tasks, batch=3)
    assert max(sizes) > 1  # calls really were generated together
    assert sum(sizes) == sum(len(sum(e.latency.values(), [])) for e in alone)  # and every call once
    assert [e.trajectory.model_dump(mode="json") for e in together] == [e.trajectory.model_dump(mode="json") for e in alone]
    assert [e.steps for e in together] == [e.steps for e in alone]
    if variant == "reuse":  # its tiny models write different turns per task (the tiny backbone repeats one text)
        assert len({e.trajectory.model_dump_json(include={"turns"}) for e in alone}) == len(tasks)
