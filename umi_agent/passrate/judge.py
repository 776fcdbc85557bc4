"""The ToolEval judge through any OpenAI-compatible chat server, with an on-disk verdict cache.

A judge call is what ToolEval's `function_call` sends (read from StableToolBench's
`evaluators/registered_cls/tooleval.py`, see ../shared/TOOLCALLING.md §12): one user message, the
function's template text (`data/tooleval_default_template.txt`, ToolEval's own, kept verbatim)
with its arguments filled in, the function (`data/tooleval_default_functions.json`, plus the
required `reason` string ToolEval adds) forced through `tools` + `tool_choice`, temperature 0.2,
max_tokens 1000. The reply is the JSON arguments of the first tool call.

Retries as ToolEval's: a call is tried up to 3 times, 4 s apart (its tenacity decorator), and a
verdict whose tries all failed is tried again while less than 15 s have passed since it began
(its backoff around each query and round); what still fails is a `JudgeError`, which the scorer
counts as `judge_error` (that round's verdict is missing, which ToolEval's scoring counts as 0).

Fallbacks for judges that cannot call functions (documented in docs/passrate.md):
- a reply without a tool call: the first JSON object in its text whose keys pass the check
  (`via: "content"`); a reply with neither is garbage, retried, then a judge error;
- a server that refuses `tools` / `tool_choice` (HTTP 400 or 422 naming tools or functions): the rest of the run asks
  without them, the prompt ending with one sentence that asks for the JSON object
  (`via: "content-mode"`); such numbers are not ToolEval's and the summary says so.
A judge that cannot be reached at all (every try of a verdict failed to connect) is marked
unreachable: later verdicts fail at once, without waiting on the network again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

CONTENT_MODE_SUFFIX = "\n\nReply with only a JSON object holding the arguments of `{name}`: {schema}"
REASON = {"type": "string", "description": "explain your answer."}


class JudgeError(RuntimeError):
    """A verdict the judge did not give (unreachable, refused, or garbage after every retry)."""


class Garbage(ValueError):
    """A reply with no usable arguments."""


class Transient(RuntimeError):
    """A try that may work later (a timeout, HTTP 429): retried, never marks the judge unusable."""


class JudgeConfig(BaseModel):
    url: str
    model: str
    temperature: float = 0.2
    max_tokens: int = 1000
    timeout_s: float = 60.0
    attempts: int = 3
    retry_wait_s: float = 4.0
    budget_s: float = 15.0


class Reply(BaseModel):
    """A judge's arguments for one function call, and how they were read."""

    arguments: dict[str, Any]
    via: str = "tool_call"  # tool_call | content | content-mode
    cached: bool = False


@cache
def templates() -> tuple[dict[str, str], dict[str, dict]]:
    """ToolEval's prompt text per function and its function schemas (package data)."""
    root = resources.files("umi_agent.passrate") / "data"
    text = (root / "tooleval_default_template.txt").read_text(encoding="utf-8")
    prompts = {}
    for block in re.findall(r"<function>(.*?)</function>", text, re.DOTALL):
        name = re.findall(r"<name>(.*?)</name>", block, re.DOTALL)[0]
        prompts[name] = re.findall(r"<description>(.*?)</description>", block, re.DOTALL)[0]
    schemas = json.loads((root / "tooleval_default_functions.json").read_text(encoding="utf-8"))
    return prompts, {function["name"]: function for function in schemas["functions"]}


def tool_schema(function: str) -> dict:
    """The function as ToolEval sends it: its schema with a required `reason`."""
    schema = copy.deepcopy(templates()[1][function])
    schema["parameters"]["required"].append("reason")
    schema["parameters"]["properties"]["reason"] = dict(REASON)
    return schema


def prompt(function: str, arguments: dict[str, str]) -> str:
    return templates()[0][function].format(**arguments)


def first_json_object(text: str, accept: Callable[[dict], None]) -> dict | None:
    """The first JSON object in `text` that `accept` does not reject (model chatter around it,
    a ```json fence, anything)."""
    from umi_data.sources.chat_values import embedded_json

    for value, _, _ in embedded_json(text or "", "{"):
        if isinstance(value, dict):
            try:
                accept(value)
                return value
            except Garbage:
                continue
    return None


def what_server_said(exc: Exception) -> str:
    """The first line of an HTTP error's message (OpenAI's `error.message`, FastAPI's `detail`)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        body = (inner.get("message") if isinstance(inner, dict) else inner) or body.get("message") or body.get("detail") or body
    text = str(body if body is not None else exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class VerdictCache:
    """Judge replies on disk, one JSON line each, keyed by (function, its arguments: the query
    and the answer, judge model, round): a rerun asks nothing it asked before. Thread-safe;
    a torn last line (a killed run) is skipped on reading."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.lock, self.entries = path, threading.Lock(), {}
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = Reply(arguments=entry["arguments"], via=entry.get("via", "tool_call"))
                except (ValueError, KeyError, TypeError):
                    continue

    @staticmethod
    def key(function: str, arguments: dict[str, str], model: str, round_: int) -> str:
        text = json.dumps([function, arguments, model, round_], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Reply | None:
        with self.lock:
            found = self.entries.get(key)
        return found.model_copy(update={"cached": True}) if found is not None else None

    def put(self, key: str, reply: Reply, function: str, round_: int) -> None:
        line = json.dumps({"key": key, "function": function, "round": round_, "arguments": reply.arguments, "via": reply.via},
                          ensure_ascii=False) + "\n"
        with self.lock:
            self.entries[key] = reply
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8", errors="surrogatepass") as handle:
                    handle.write(line)


class Judge:
    """ToolEval's function calls against one model on one server; counts what happened."""

    def __init__(self, config: JudgeConfig, cache_file: Path | None = None) -> None:
        try:
            from openai import OpenAI
        except ImportError:
            raise JudgeError("the judge needs the openai client: pip install 'umi[serve]'") from None
        self.config, self.cache = config, VerdictCache(cache_file)
        self.client = OpenAI(base_url=config.url.rstrip("/"), api_key="EMPTY", timeout=config.timeout_s, max_retries=0)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.content_mode = False
        self.unreachable: str | None = None

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def call(self, function: str, arguments: dict[str, str], round_: int, accept: Callable[[dict], None]) -> Reply:
        """The judge's arguments for `function` (cached; retried as ToolEval does)."""
        key = VerdictCache.key(function, arguments, self.config.model, round_)
        if (hit := self.cache.get(key)) is not None:
            self.count("cache_hits")
            return hit
        start, problem = time.monotonic(), ""
        while True:
            connect_failures = 0
            for attempt in range(self.config.attempts):
                if self.unreachable:
                    raise JudgeError(self.unreachable)
                if attempt:
                    time.sleep(self.config.retry_wait_s)
                try:
                    reply = self.request(function, arguments, accept)
                except Garbage as exc:
                    problem = f"unusable reply: {exc}"
                    self.count("garbage_replies")
                    continue
                except Transient as exc:
                    problem = str(exc)
                    self.count("transient_failures")
                    continue
                except ConnectionError as exc:
                    problem, connect_failures = str(exc), connect_failures + 1
                    continue
                self.cache.put(key, reply, function, round_)
                return reply
            if connect_failures == self.config.attempts:
                self.unreachable = f"judge unusable at {self.config.url} (no reply in {self.config.attempts} tries): {problem}"
                raise JudgeError(self.unreachable)
            if time.monotonic() - start >= self.config.budget_s:
                raise JudgeError(problem)

    def request(self, function: str, arguments: dict[str, str], accept: Callable[[dict], None]) -> Reply:
        """One HTTP request; `ConnectionError` (no connection, HTTP 401/403/404/5xx), `Transient`
        (a timeout, HTTP 429) or `Garbage` (the reply)."""
        import openai

        from umi_agent.jsonio import scrub_text

        messages = [{"role": "user", "content": scrub_text(prompt(function, arguments))}]  # a lone surrogate cannot go out as JSON
        kwargs: dict[str, Any] = dict(model=self.config.model, temperature=self.config.temperature, max_tokens=self.config.max_tokens)
        schema = tool_schema(function)
        if self.content_mode:
            messages[0]["content"] += CONTENT_MODE_SUFFIX.format(name=function, schema=json.dumps(schema["parameters"]))
        else:
            kwargs.update(tools=[{"type": "function", "function": schema}],
                          tool_choice={"type": "function", "function": {"name": function}})
        self.count("judge_requests")
        try:
            response = self.client.chat.completions.create(messages=messages, **kwargs)
        except openai.APIStatusError as exc:
            said = what_server_said(exc)
            if exc.status_code in (400, 422) and not self.content_mode and ("tool" in said.lower() or "function" in said.lower()):
                self.content_mode = True
                self.count("tools_refused")
                return self.request(function, arguments, accept)
            if exc.status_code in (400, 413, 422):  # this request refused (too long, ...): this verdict fails, not the judge
                raise Garbage(f"HTTP {exc.status_code}: {said}") from None
            if exc.status_code in (408, 409, 429):
                raise Transient(f"HTTP {exc.status_code} from {self.config.url}") from None
            raise ConnectionError(f"HTTP {exc.status_code} from {self.config.url} for model {self.config.model!r}: {said}") from None
        except openai.APITimeoutError:
            raise Transient(f"no reply from {self.config.url} within {self.config.timeout_s} s (--judge-timeout)") from None
        except openai.APIConnectionError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {str(exc.__cause__ or exc).splitlines()[0][:200]}") from None
        except openai.APIError as exc:  # a body that is not a chat completion
            raise Garbage(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        return self.read_reply(response, accept)

    def read_reply(self, response: Any, accept: Callable[[dict], None]) -> Reply:
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            raise Garbage("no choices in the reply")
        calls = getattr(message, "tool_calls", None) or []
        if calls and not self.content_mode:
            try:
                value = json.loads(calls[0].function.arguments)
            except (ValueError, TypeError, AttributeError) as exc:
                raise Garbage(f"tool call arguments are not JSON ({exc})") from None
            if not isinstance(value, dict):
                raise Garbage("tool call arguments are not a JSON object")
            accept(value)
            return Reply(arguments=value)
        found = first_json_object(getattr(message, "content", None) or "", accept)
        if found is None:
            text = (getattr(message, "content", None) or "").strip().replace("\n", " ")
            raise Garbage(f"no tool call and no usable JSON object in the text ({text[:80]!r})")
        self.count("content_replies")
        return Reply(arguments=found, via="content-mode" if self.content_mode else "content")
