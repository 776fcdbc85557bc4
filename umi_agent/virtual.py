"""StableToolBench's `POST /virtual` contract without the transport: `VirtualAPI.answer(request)`.

A request body `{category, tool_name, api_name, tool_input, strip, toolbench_key}` is answered
with the body `{"error": str, "response": ...}` exactly as StableToolBench's server answers it
from its cache (../shared/TOOLCALLING.md §11): the same name standardisation, `chat_with_user`,
a `tool_input` string or dict, `"Tool input parse error...\\n"` for input that does not parse,
and the recorded body itself on a hit. What differs is the miss: the official server calls the
real API and then an LLM; umi is cache-only unless told otherwise, and a miss is an error body
that says it is a miss, counted per api in `stats()`. Opt-in miss policies:

- `nearest`: the recorded response of the closest cached input of the same api, with an extra
  key `"umi": {"match": "nearest", "input": <that input>}` (clients read only error/response);
- `simulate`: an OpenAI-compatible model writes the answer (simulate.py), kept in a separate
  overlay cache and flagged `"umi": {"match": "simulated"}`.

`answer` never raises on a request: a body that is not the contract's shape is answered with
`{"error": "invalid request: ...", "response": ""}` (the HTTP server sends it with status 422,
as FastAPI does for the official server). `strip` and `toolbench_key` may be absent (the official
pydantic model requires them; umi does not need them).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from umi_data.toolcache.keys import UNPARSED, canonical_key, exact_key, parse_tool_input
from umi_data.sources.toolbench_names import Address, request_address as _request_address
from umi_data.toolcache.store import CacheStore

OnMiss = Literal["error", "nearest", "simulate"]
ON_MISS = ("error", "nearest", "simulate")
#: Name triples whose address is remembered (standardising takes three regex passes).
ADDRESS_MEMO = 65536
REQUIRED = ("category", "tool_name", "api_name", "tool_input")
OPTIONAL = ("strip", "toolbench_key")
PARSE_ERROR = {"error": "Tool input parse error...\n", "response": ""}
CHAT_WITH_USER = {"error": "", "response": "Chat with user."}
MISS_PREFIX = "umi replay cache miss"
#: Longest name accepted in a request (a longer one cannot be in any cache).
MAX_NAME_CHARS = 1024
#: Candidates the nearest policy compares (the most recorded inputs of one api seen in practice: hundreds).
NEAREST_CANDIDATES = 5000
#: Distinct apis counted separately in the miss statistics (then "(other)"): the counter stays bounded.
MAX_COUNTED_APIS = 100_000
#: A backend of the agent: a /virtual request body in, the {"error", "response"} body out.
Backend = Callable[[dict[str, Any]], dict[str, Any]]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Reply:
    """An answer: HTTP `status` (200, or 422 for a request that is not the contract's shape) and
    the JSON `body` bytes (a hit's are the cache's own, never parsed)."""

    status: int
    body: bytes

    def document(self) -> dict[str, Any]:
        return json.loads(self.body)


@functools.lru_cache(maxsize=ADDRESS_MEMO)
def request_address(category: str, tool_name: str, api_name: str) -> Address:
    return _request_address(category, tool_name, api_name)


def request_problem(request: Any) -> str | None:
    """Why `request` is not a /virtual body, or None."""
    if not isinstance(request, dict):
        return f"the body must be a JSON object, got {type(request).__name__}"
    for name in REQUIRED + OPTIONAL:
        if name not in request:
            if name in REQUIRED:
                return f"field {name!r} is required"
            continue
        value = request[name]
        if name == "tool_input" and not isinstance(value, (str, dict)):
            return f"field 'tool_input' must be a string or an object, got {type(value).__name__}"
        if name != "tool_input" and not isinstance(value, str):
            return f"field {name!r} must be a string, got {type(value).__name__}"
        if name in ("category", "tool_name", "api_name") and len(value) > MAX_NAME_CHARS:
            return f"field {name!r} is longer than {MAX_NAME_CHARS} characters"
    return None


class VirtualAPI:
    """The /virtual contract over a `CacheStore`; thread-safe, so concurrent episodes share one."""

    def __init__(self, cache: CacheStore | str | Path, on_miss: OnMiss = "error", simulator: Any = None) -> None:
        if on_miss not in ON_MISS:
            raise ValueError(f"on_miss must be one of {', '.join(ON_MISS)}, got {on_miss!r}")
        if on_miss == "simulate" and simulator is None:
            raise ValueError("on_miss='simulate' needs a simulator (umi_agent.simulate.Simulator)")
        self.cache = cache if isinstance(cache, CacheStore) else CacheStore(cache)
        self.on_miss, self.simulator = on_miss, simulator
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        self._misses: Counter = Counter()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.answer(request)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The response body for a /virtual request body (see the module docstring)."""
        return self.respond(request).document()

    def respond(self, request: Any) -> Reply:
        """`answer` as status and body bytes (what the HTTP server sends)."""
        reply = self.respond_cached(request)
        return reply if reply is not None else self._simulated(request)

    def respond_cached(self, request: Any) -> Reply | None:
        """Everything but a simulation (None: this request needs the simulator, which is slow)."""
        problem = request_problem(request)
        if problem is not None:
            self._count("invalid_request")
            return Reply(422, _dumps({"error": f"invalid request: {problem}", "response": ""}))
        address = request_address(request["category"], request["tool_name"], request["api_name"])
        if address.api == "chat_with_user":
            self._count("chat_with_user")
            return Reply(200, _dumps(CHAT_WITH_USER))
        tool_input = parse_tool_input(request["tool_input"])
        exact = None if tool_input is UNPARSED else _exact(tool_input)
        if exact is None:
            self._count("parse_error")
            return Reply(200, _dumps(PARSE_ERROR))
        return self._lookup(address, tool_input, exact)

    def _lookup(self, address: Address, tool_input: Any, exact: str) -> Reply | None:
        api_id = self.cache.api_id(address)
        found = self.cache.find_exact(api_id, exact) if api_id is not None else None
        canon = canonical_key(tool_input) if found is None else None  # only when the exact key missed
        if found is None and api_id is not None and canon is not None:
            found = self.cache.find_canonical(api_id, canon)
        if found is not None:
            self._count(f"hit_{found.match}")
            return Reply(200, found.response.encode("utf-8", "surrogatepass"))
        if self.on_miss == "simulate":
            return None
        if self.on_miss == "nearest" and api_id is not None:
            nearest = self._nearest(api_id, canon)
            if nearest is not None:
                self._count("nearest", address)
                return nearest
        self._count("miss", address)
        return Reply(200, _dumps({"error": _miss_text(address, exact), "response": ""}))

    def _nearest(self, api_id: int, canon: str | None) -> Reply | None:
        wanted = _items(canon)
        best, best_score = None, None
        for position, (cached_exact, cached_canon, response) in enumerate(self.cache.entries_of(api_id, NEAREST_CANDIDATES)):
            have = _items(cached_canon)
            score = (len(wanted & have), -len(wanted ^ have), -position)
            if best_score is None or score > best_score:
                best, best_score = (cached_exact, response), score
        if best is None:
            return None
        return Reply(200, _dumps(flagged(json.loads(best[1]), {"match": "nearest", "input": best[0]})))

    def _simulated(self, request: dict[str, Any]) -> Reply:
        address = request_address(request["category"], request["tool_name"], request["api_name"])
        tool_input = parse_tool_input(request["tool_input"])
        api_id = self.cache.api_id(address)
        examples = self.cache.entries_of(api_id, 5) if api_id is not None else []
        document, fresh = self.simulator.answer(address, tool_input, examples)
        self._count("simulated" if fresh else "simulated_overlay_hit", address)
        return Reply(200, _dumps(document))

    def _count(self, what: str, address: Address | None = None) -> None:
        with self._lock:
            self._counts[what] += 1
            if address is not None and what != "simulated_overlay_hit":
                key = "/".join(address)
                if key not in self._misses and len(self._misses) >= MAX_COUNTED_APIS:
                    key = "(other)"
                self._misses[key] += 1

    def stats(self) -> dict[str, Any]:
        """Requests by outcome, and misses (answered nearest/simulated or not) per `category/tool_dir/api`."""
        with self._lock:
            counts = dict(self._counts)
            misses = dict(self._misses.most_common())
        requests = sum(counts.values())
        hits = counts.get("hit_exact", 0) + counts.get("hit_canonical", 0)
        looked_up = hits + counts.get("miss", 0) + counts.get("nearest", 0) + counts.get("simulated", 0) + counts.get("simulated_overlay_hit", 0)
        return {"requests": requests, "counts": counts, "hit_rate": hits / looked_up if looked_up else None,
                "misses_per_api": misses, "on_miss": self.on_miss}


def _exact(tool_input: Any) -> str | None:
    try:
        return exact_key(tool_input)
    except RecursionError:
        return None


def _miss_text(address: Address, exact: str) -> str:
    shown = exact if len(exact) <= 200 else exact[:200] + "..."
    return (f"{MISS_PREFIX}: no recorded response for api {address.api!r} of tool {address.tool_dir!r} in category "
            f"{address.category!r} with input {shown}")


def _items(canon: str | None) -> set[str]:
    """An input's (key, value) pairs as text, for the nearest policy's overlap score."""
    try:
        value = json.loads(canon) if canon is not None else None
    except ValueError:
        return set()
    if isinstance(value, dict):
        return {json.dumps([k, v], sort_keys=True, ensure_ascii=False) for k, v in value.items()}
    return {canon} if canon is not None else set()


def flagged(value: Any, umi: dict[str, Any]) -> dict[str, Any]:
    """A cached body with umi's `"umi"` key added (a body that is not an object is wrapped)."""
    body = dict(value) if isinstance(value, dict) else {"error": "", "response": value}
    body["umi"] = umi
    return body


__all__ = ["Backend", "MISS_PREFIX", "ON_MISS", "PARSE_ERROR", "Reply", "VirtualAPI", "flagged", "request_problem"]
