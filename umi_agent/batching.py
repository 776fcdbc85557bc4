"""Live episodes played together, their model calls generated in batches.

A local model answers one prompt in about the time it answers eight (the forward passes are
shared; `TransformersModel.generate_batch` pads on the left so every prompt ends where
generation starts). Episodes, though, are sequential programs: each waits for its planner,
then its caller, then the tool. So `play_batched` runs up to `batch` episodes in threads, and
every model call goes to a `StepBatcher`: it holds the calls until every episode in play is
waiting on one (or has finished), then generates each role's waiting prompts in one
`generate_batch` call and hands the answers back. Greedy decoding with float32 weights gives
the same text in a batch as alone (tests/test_live_batching.py checks whole episodes), so the
episodes are those of a one-at-a-time run, in less time.

A call's latency is then the time until its answer came back (the batch it was in).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence


@dataclass
class _Request:
    key: int  # the model's identity: requests to the same model are batched together
    model: Any
    prompt: str
    answer: str | None = None
    error: BaseException | None = None


@dataclass
class StepBatcher:
    """Collects model calls from `players` threads; dispatches them when every player waits."""

    players: int
    _waiting: list[_Request] = field(default_factory=list)
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def leave(self) -> None:
        """A player has no more episodes: the others no longer wait for it."""
        with self._condition:
            self.players -= 1
            self._dispatch_if_all_wait()

    def generate(self, model: Any, prompt: str) -> str:
        """The answer of `model` to `prompt`, generated with the other players' waiting prompts."""
        request = _Request(id(model), model, prompt)
        with self._condition:
            self._waiting.append(request)
            self._dispatch_if_all_wait()
            while request.answer is None and request.error is None:
                self._condition.wait()
        if request.error is not None:
            raise request.error
        assert request.answer is not None
        return request.answer

    def _dispatch_if_all_wait(self) -> None:
        """Called holding the lock: when every player in play waits, answer them all, one
        `generate_batch` per model, in the order the prompts arrived."""
        if not self._waiting or len(self._waiting) < self.players:
            return
        waiting, self._waiting = self._waiting, []
        for key in dict.fromkeys(request.key for request in waiting):
            group = [request for request in waiting if request.key == key]
            try:
                answers = batch_of(group[0].model)([request.prompt for request in group])
                for request, answer in zip(group, answers):
                    request.answer = answer
            except Exception as exc:  # every episode of the batch sees the model's failure
                for request in group:
                    request.error = exc
        self._condition.notify_all()


def batch_of(model: Any) -> Callable[[Sequence[str]], list[str]]:
    return getattr(model, "generate_batch", None) or (lambda prompts: [model.generate(prompt) for prompt in prompts])


@dataclass(frozen=True)
class BatchedModel:
    """A role model as the agent loop sees it (`generate(prompt) -> str`), answering through a batcher."""

    batcher: StepBatcher
    model: Any

    def generate(self, prompt: str) -> str:
        return self.batcher.generate(self.model, prompt)


def batched_agent(agent: Any, batcher: StepBatcher) -> Any:
    """The same agent (MultiAgent or SingleAgent) with each role model answering through `batcher`."""
    roles = ("backbone",) if hasattr(agent, "backbone") else ("planner", "caller", "summarizer")
    return replace(agent, **{role: BatchedModel(batcher, getattr(agent, role)) for role in roles})


def play_batched(agent: Any, tasks: Sequence[Any], episode: Callable[[Any, int, Any], Any], batch: int) -> list[Any]:
    """`[episode(agent', index, task) ...]` in task order, up to `batch` episodes at once, agent'
    being `agent` with batched role models. Each worker thread takes the next task when its
    episode ends; the batcher waits only for workers that still play."""
    results: list[Any] = [None] * len(tasks)
    workers = max(1, min(batch, len(tasks)))
    batcher = StepBatcher(players=workers)
    shared = batched_agent(agent, batcher)
    lock, next_task = threading.Lock(), iter(range(len(tasks)))
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                with lock:
                    index = next(next_task, None)
                if index is None or failures:
                    return
                results[index] = episode(shared, index, tasks[index])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            failures.append(exc)
        finally:
            batcher.leave()

    threads = [threading.Thread(target=work, name=f"episode-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


__all__ = ["BatchedModel", "StepBatcher", "batched_agent", "play_batched"]
