"""Models the agent loop can drive: local transformers models from a GLPFT run, and scripted /
replay models for tests. Every backend is `generate(prompt) -> str`, greedy and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from umi_data.rendering.prompts import END


class ScriptedModel:
    """Answers from a fixed list (in order) or a function of the prompt; records every prompt."""

    def __init__(self, outputs: Sequence[str] | Callable[[str], str]) -> None:
        self._outputs = outputs
        self.prompts: list[str] = []

    def generate(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if callable(self._outputs):
            return self._outputs(prompt)
        if len(self.prompts) > len(self._outputs):
            raise RuntimeError(f"ScriptedModel ran out of outputs after {len(self._outputs)} call(s)")
        return self._outputs[len(self.prompts) - 1]


class ReplayMiss(LookupError):
    """A replay model was asked a prompt its recordings do not hold."""


class ReplayModel:
    """Replays recorded behaviour: the target of the role example whose input is the prompt.

    Built from a corpus's role examples, it makes the agent re-enact the recorded trajectories,
    which checks that the loop renders prompts exactly as the training corpora do."""

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        # The first recording of a prompt wins: in official α-UMi corpora a give-up repeats the
        # previous step's (stale) input with another target, and the first is the true pair.
        self.answers: dict[str, str] = {}
        for prompt, target in examples:
            self.answers.setdefault(prompt, target)

    @classmethod
    def from_corpus(cls, corpus: str | Path, role: str, trajectory_id: str | None = None) -> "ReplayModel":
        """The role examples of a corpus directory (of one trajectory: two trajectories of the
        same task may open with the same prompt and different answers)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from umi_data.rendering.examples import ROLE_PATHS

        table = pq.read_table(Path(corpus) / f"{ROLE_PATHS[role]}.parquet", columns=["trajectory_id", "input", "target"])
        if trajectory_id is not None:
            table = table.filter(pc.equal(table.column("trajectory_id"), trajectory_id))
        return cls(zip(table.column("input").to_pylist(), table.column("target").to_pylist()))

    def generate(self, prompt: str) -> str:
        try:
            return self.answers[prompt]
        except KeyError:
            raise ReplayMiss(f"no recorded example has this prompt (…{prompt[-200:]!r})") from None


@dataclass(frozen=True)
class PromptFormat:
    """How a role prompt becomes the text a model continues: the `"system: "` prefix for runs
    trained in α-UMi compat mode, the chat template for runs trained with `--prompt-format chat`,
    and left truncation to the model's window as in training (`umi_train.encode.fit_prompt`).
    Local and served models share it, so both see one text."""

    tokenizer: Any | None = None  # None: no truncation (a server without a local tokenizer)
    compat: str | None = None
    max_input_tokens: int | None = None  # default: the tokenizer's model_max_length, else 2048
    prompt_format: str = "alpha-umi"  # or "chat": the run's training format (umi_train.chat)
    tool_docs: str = "full"  # or "compact": the run's tool documentation (umi_train.chat.compact_tool_docs)

    @property
    def window(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", None)
        return self.max_input_tokens or (limit if isinstance(limit, int) and limit < 1_000_000 else 2048)

    def text(self, prompt: str, max_new_tokens: int) -> str:
        from umi_train.encode import ALPHA_UMI_SYSTEM_PREFIX, fit_prompt

        from umi_train.chat import render_tools

        prompt = render_tools(prompt, self.tool_docs)
        if self.tokenizer is None:
            if self.prompt_format == "chat":
                raise ValueError("a run trained with --prompt-format chat needs its tokenizer (--tokenizer DIR) to render prompts")
            return ALPHA_UMI_SYSTEM_PREFIX + prompt if self.compat == "alpha-umi" else prompt
        return fit_prompt(prompt, self.tokenizer, max(self.window - max_new_tokens, 1), compat=self.compat, prompt_format=self.prompt_format)

    def ids(self, prompt: str, max_new_tokens: int) -> list[int]:
        """The token ids of `text` as in training: BOS by umi's rule for raw text; a chat
        template's text holds its own special tokens."""
        from umi_train import encode_prompt

        text = self.text(prompt, max_new_tokens)
        if self.prompt_format == "chat":
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return encode_prompt(text, self.tokenizer)


def run_config(run: str | Path) -> dict[str, Any]:
    """The training options a run recorded: glpft.json's, or an sft run's run.json's ({} if none)."""
    import orjson

    for name in (GLPFT_FILE, "run.json"):
        path = Path(run) / name
        if path.is_file():
            return orjson.loads(path.read_bytes()).get("config", {})
    return {}


def ordered_map(function: Callable[[Any], Any], items: Iterable[Any], concurrency: int = 1) -> list[Any]:
    """`[function(item) for item in items]`, run by up to `concurrency` threads; results in input
    order whatever order they finish in (episodes and prompts are independent of each other)."""
    items = list(items)
    if concurrency <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(function, items))


class TransformersModel:
    """A causal LM (base + adapter, or merged) with greedy decoding; stops at EOS or `</s>`.

    Prompts are encoded exactly as in training (`umi_train.encode_prompt`: BOS, and the
    `"system: "` prefix for runs trained in α-UMi compat mode; the chat template for runs
    trained with `--prompt-format chat`), cut from the left when too long.
    The output is decoded without special tokens, as OpenAI-compatible servers decode it."""

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 256, max_input_tokens: int | None = None,
                 compat: str | None = None, prompt_format: str = "alpha-umi", tool_docs: str = "full") -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens, self.compat = max_new_tokens, compat
        self.format = PromptFormat(tokenizer, compat, max_input_tokens, prompt_format, tool_docs)

    @classmethod
    def from_run(cls, run: str | Path, role: str, step: int | None = None, **kwargs: Any) -> "TransformersModel":
        """The run's model for `role` (at checkpoint `step` when given), prompts as it was trained."""
        from umi_train import load_role

        model, tokenizer = load_role(run, role, step)
        config = run_config(run)
        return cls(model, tokenizer, compat=config.get("compat"), prompt_format=config.get("prompt_format", "alpha-umi"),
                   tool_docs=config.get("tool_docs", "full"), **kwargs)

    def encode(self, prompt: str) -> list[int]:
        """The prompt's token ids as in training (the run's compat mode and prompt format), cut
        from the left to leave room for the output."""
        return self.format.ids(prompt, self.max_new_tokens)

    def decode(self, new_ids: Sequence[int]) -> str:
        """The text of generated ids up to the first EOS (in a batch, a row that stopped early
        goes on with padding), without special tokens, as OpenAI-compatible servers decode it."""
        eos, ids = self.tokenizer.eos_token_id, list(new_ids)
        if eos is not None and eos in ids:
            ids = ids[: ids.index(eos)]
        return self.tokenizer.decode(ids, skip_special_tokens=True).split(END)[0]

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id

    def generate(self, prompt: str) -> str:
        return self.generate_batch([prompt])[0]

    def generate_batch(self, prompts: Sequence[str]) -> list[str]:
        """Greedy continuations of several prompts in one `generate` call.

        Prompts are padded on the left (masked), so every prompt ends where generation starts;
        each output is cut at its own first EOS. With float32 weights this gives the same text
        as one prompt at a time (tests/test_reproduce.py checks it on the tiny model); the
        forward passes are shared, which is what makes static evaluation affordable on CPU."""
        import torch

        if not prompts:
            return []
        encoded = [self.encode(prompt) for prompt in prompts]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.tensor([[self._pad_id] * (width - len(ids)) + ids for ids in encoded])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self._pad_id,
            )
        return [self.decode(row[width:].tolist()) for row in output]


def generate_all(model: Any, prompts: Sequence[str], batch_size: int = 1, label: str | None = None) -> list[str]:
    """Outputs of `model` for every prompt, in order, `batch_size` prompts per `generate_batch`
    call (a local model: one padded forward pass; a served one: that many requests in flight),
    prompts of similar length together. With `label`, a progress line after each batch."""
    batch = getattr(model, "generate_batch", None) or (lambda chunk: [model.generate(prompt) for prompt in chunk])
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # little padding per batch
    outputs: list[str] = [""] * len(prompts)
    size = max(batch_size, 1)
    for start in range(0, len(order), size):
        chosen = order[start:start + size]
        for index, text in zip(chosen, batch([prompts[i] for i in chosen])):
            outputs[index] = text
        if label:
            print(f"{label}: {min(start + size, len(order))}/{len(order)} prompts", flush=True)
    return outputs


GLPFT_FILE = "glpft.json"


class RunNotFoundError(ValueError):
    """A path that is not a finished GLPFT run directory (a usage error)."""


def glpft_record(run: str | Path) -> dict[str, Any]:
    """The record `python -m umi_train.glpft` writes last (variant, config, stages)."""
    import orjson

    path = Path(run) / GLPFT_FILE
    if not path.is_file():
        raise RunNotFoundError(f"{run}: no {GLPFT_FILE}; give a finished `umi-train glpft` run directory")
    return orjson.loads(path.read_bytes())


def role_models(run: str | Path, step: int | None = None, **kwargs: Any) -> dict[str, TransformersModel]:
    """The models a GLPFT run trained, by role: `backbone` alone for the Single-LLM baseline
    (`--variant single`), else the α-UMi planner, caller and summarizer; with `step`, each at
    its checkpoint of that step (learning curves)."""
    from umi_train.load import agent_roles

    return {role: TransformersModel.from_run(run, role, step, **kwargs) for role in agent_roles(glpft_record(run)["variant"])}


__all__ = ["PromptFormat", "run_config", "RunNotFoundError", "generate_all", "ordered_map", "glpft_record", "role_models", "ReplayMiss", "ReplayModel", "ScriptedModel", "TransformersModel"]
