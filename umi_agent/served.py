"""Models served by an OpenAI-compatible server (vLLM, SGLang, TGI, `transformers serve`).

A served role model is one more backend behind `generate(prompt) -> str` (plus
`generate_batch`): the legacy `/v1/completions` endpoint gets the exact prompt text a local
model would encode (α-UMi prompts are raw text, not chat; the compat prefix and the left cut
are applied here, by `backends.PromptFormat`), with greedy decoding (`temperature: 0`), the
role's stop strings and `max_tokens`. The `openai` client does the HTTP: timeouts, and retries
with exponential backoff on 429, 5xx and lost connections. What still fails becomes a
`ServerError` with one line that says what to check.

    python -m umi_agent.run --server http://127.0.0.1:8000/v1 --model planner=P --model caller=C \\
        --model summarizer=S --tasks tasks.jsonl --out live/       # α-UMi, one name per role
    python -m umi_agent.run --server URL --model NAME ...          # the Single-LLM backbone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from umi_agent.backends import PromptFormat, ordered_map
from umi_data.rendering.prompts import END

#: what ends a role's output: the end-of-turn marker of every role's training target
STOP: dict[str, tuple[str, ...]] = {role: (END,) for role in ("planner", "caller", "summarizer", "backbone")}
AGENT_ROLES = (("planner", "caller", "summarizer"), ("backbone",))
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 300.0
DEFAULT_RETRIES = 3
SERVED_NAME = "served"


class ServerError(RuntimeError):
    """The server is unreachable, does not know a model, or failed (a one-line message)."""


class Server:
    """One OpenAI-compatible endpoint; thread-safe (concurrent episodes share it)."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES) -> None:
        try:
            from openai import OpenAI
        except ImportError:
            raise ServerError("a served model needs the openai client: pip install 'umi[serve]'") from None
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        # Local servers ignore the key; the client insists on one (and must not read OPENAI_API_KEY's).
        self.client = OpenAI(base_url=self.base_url, api_key="EMPTY", timeout=timeout, max_retries=retries)

    def complete(self, model: str, prompt: str, max_tokens: int, stop: Sequence[str]) -> str:
        """The greedy completion of `prompt`, or a `ServerError` saying what went wrong."""
        import openai

        try:
            response = self.client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0,
                                                      stop=list(stop) or None)
        except openai.APITimeoutError:
            raise ServerError(f"{self.base_url}: no answer from model {model!r} within {self.client.timeout} s "
                              f"({self.retries + 1} tries); raise --timeout or check the server") from None
        except openai.APIConnectionError as exc:
            raise ServerError(f"{self.base_url}: unreachable ({_cause(exc)}) after {self.retries + 1} tries; "
                              "is the server running, and is --server its base URL (ending in /v1)?") from None
        except openai.APIStatusError as exc:
            raise ServerError(self._status_message(model, exc)) from None
        return response.choices[0].text

    def _status_message(self, model: str, exc: Any) -> str:
        code, detail = exc.status_code, _cause(exc)
        if code == 404:
            return f"{self.base_url}: the server has no model {model!r} ({detail}); check --model"
        if code >= 500:
            return (f"{self.base_url}: HTTP {code} for model {model!r} after {self.retries + 1} tries ({detail}); an unknown "
                    "model name fails this way on `transformers serve`: give a name the server serves (for transformers "
                    "serve, the absolute path of a model directory)")
        return f"{self.base_url}: HTTP {code} for model {model!r}: {detail}"


def _cause(exc: Exception) -> str:
    """The first line of what the client or the server said."""
    body = getattr(exc, "body", None)
    message = body.get("message") or body.get("detail") if isinstance(body, dict) else None
    text = str(message or exc.__cause__ or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class ServedModel:
    """One role's model on a server: `generate(prompt) -> str` like `TransformersModel`."""

    def __init__(self, server: Server, name: str, role: str, *, format: PromptFormat | None = None,
                 max_new_tokens: int = 256, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.server, self.name, self.role = server, name, role
        self.format = format or PromptFormat()
        self.max_new_tokens, self.concurrency = max_new_tokens, concurrency

    def generate(self, prompt: str) -> str:
        text = self.server.complete(self.name, self.format.text(prompt, self.max_new_tokens), self.max_new_tokens, STOP[self.role])
        return text.split(END)[0]

    def generate_batch(self, prompts: Sequence[str]) -> list[str]:
        """Up to `concurrency` requests in flight; the server batches them as it can."""
        return ordered_map(self.generate, prompts, self.concurrency)

    def check(self) -> None:
        """A one-token request: a wrong URL or model name fails here, before any episode."""
        self.server.complete(self.name, "ping", 1, ())


def parse_model_names(values: Sequence[str]) -> dict[str, str]:
    """`--model` values -> {role: name}: `planner=P caller=C summarizer=S`, or one bare `NAME`
    (or `backbone=NAME`) for the Single-LLM backbone."""
    names: dict[str, str] = {}
    for value in values:
        role, equals, name = value.partition("=")
        role, name = (role, name) if equals and role in STOP else ("backbone", value)
        if not name or role in names:
            raise ServerError(f"--model {value}: give each role once, as ROLE=NAME ({', '.join(STOP)}) or one bare NAME")
        names[role] = name
    if tuple(sorted(names, key=list(STOP).index)) not in AGENT_ROLES:
        raise ServerError(f"--model: name the planner, caller and summarizer (planner=P caller=C summarizer=S), or one "
                          f"backbone model; got {', '.join(names) or 'none'}")
    return names


def prompt_format(directory: Path | None) -> PromptFormat:
    """The tokenizer (for the left cut) and compat mode of the served models, read from a local
    model directory (`umi_train.serve` writes compat into its umi_model.json)."""
    if directory is None:
        return PromptFormat()
    from transformers import AutoTokenizer

    from umi_train.provenance import MODEL_FILE, read_json

    if not directory.is_dir():
        raise ServerError(f"--tokenizer {directory}: no such directory")
    card = read_json(directory / MODEL_FILE) or {}
    return PromptFormat(AutoTokenizer.from_pretrained(directory), card.get("compat"), prompt_format=card.get("prompt_format", "alpha-umi"),
                        tool_docs=card.get("tool_docs", "full"))


def server_requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for served models (`--model` alone is a usage error)."""
    if args.server is None and (args.model or args.tokenizer):
        raise ServerError("--model and --tokenizer name served models: give the server too (--server URL)")
    return args.server is not None


def served_models(args: argparse.Namespace, max_new_tokens: int) -> dict[str, ServedModel]:
    """The role models `add_server_arguments` describes, each checked with one request."""
    names = parse_model_names(args.model or [])
    local = [Path(name) for name in names.values() if Path(name).is_absolute() and Path(name).is_dir()]
    format = prompt_format(args.tokenizer or (local[0] if local else None))
    if format.tokenizer is None:
        print("note: no --tokenizer (and the model names are not local directories): prompts go to the server uncut, "
              "so one longer than the model's window fails there", file=sys.stderr)
    server = Server(args.server, timeout=args.timeout)
    models = {role: ServedModel(server, name, role, format=format, max_new_tokens=max_new_tokens, concurrency=args.concurrency)
              for role, name in names.items()}
    for model in {m.name: m for m in models.values()}.values():
        model.check()
    return models


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("served models (an OpenAI-compatible server instead of --run)")
    group.add_argument("--server", metavar="URL", help="base URL of the server, e.g. http://127.0.0.1:8000/v1")
    group.add_argument("--model", action="append", metavar="[ROLE=]NAME",
                       help="served model of a role (planner=P caller=C summarizer=S), or one NAME for the Single-LLM backbone")
    group.add_argument("--tokenizer", type=Path, metavar="DIR",
                       help="local directory with the served models' tokenizer, to cut over-long prompts as a local model "
                            "does (default: the model name when it is a local directory; `umi-train serve` writes one)")
    group.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="X", help="seconds per request")
    group.add_argument("--concurrency", type=positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                       help="requests in flight (episodes or samples at once) against the server")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


__all__ = ["STOP", "Server", "ServerError", "ServedModel", "add_server_arguments", "parse_model_names", "prompt_format", "served_models", "server_requested"]
