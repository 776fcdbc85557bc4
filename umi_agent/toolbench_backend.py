"""Where an agent's ToolBench tool calls go, and what the cache said about each of them.

`--cache DIR` answers them in process with a `VirtualAPI` (no HTTP; `--on-miss error|nearest`),
`--service-url URL` over HTTP (umi's toolserver or StableToolBench's). Either way every response
is classified as the replay cache sees it: a *miss* is an error starting with `MISS_PREFIX`, or
an answer umi flags as not recorded (`"umi": {"match": "nearest" | "simulated"}`); a parse error
or a malformed request is neither; anything else is a *hit*. A foreign server (one without umi's
`GET /stats`) does not say when it missed, so its hits and misses are unknown (None), never guessed.
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from typing import Any

from umi_agent.toolbench_http import HttpBackend, ToolServerError
from umi_agent.virtual import MISS_PREFIX, PARSE_ERROR, Backend

#: The miss policies a run may pick in process (`simulate` needs a server: use the toolserver).
RUN_ON_MISS = ("error", "nearest")


def backend_from_args(args: argparse.Namespace) -> tuple[Backend, bool]:
    """The backend of `--cache DIR` or `--service-url URL` (exactly one), and whether its misses are known."""
    if (args.cache is None) == (args.service_url is None):
        raise ToolServerError("--toolbench-queries needs exactly one tool backend: --cache DIR (in process) or --service-url URL")
    if args.cache is not None:
        from umi_agent.virtual import VirtualAPI
        from umi_data.toolcache.build import cache_dir_for

        return VirtualAPI(cache_dir_for(args.cache), on_miss=args.on_miss), True
    if args.on_miss != "error":
        raise ToolServerError("--on-miss is the tool server's option with --service-url (python -m umi_agent.toolserver --on-miss)")
    backend = HttpBackend(args.service_url, timeout=args.tool_timeout)
    return backend, backend.is_umi_server()


def cache_outcome(response: Any) -> str | None:
    """'hit', 'miss', or None (not a cache lookup: a parse error or a malformed request)."""
    if not isinstance(response, dict):
        return None
    error = response.get("error")
    if isinstance(error, str) and error.startswith(MISS_PREFIX):
        return "miss"
    flag = response.get("umi")
    if isinstance(flag, dict) and flag.get("match") in ("nearest", "simulated"):
        return "miss"
    if error == PARSE_ERROR["error"] or (isinstance(error, str) and error.startswith(("invalid request:", "request invalid"))):
        return None
    return "hit"


class CountingBackend:
    """A backend that counts the requests it forwards, the responses that carry an error, and the
    cache's hits and misses per api (`category/tool_name/api_name` as requested)."""

    def __init__(self, backend: Backend, misses_known: bool = True) -> None:
        self.backend, self.misses_known = backend, misses_known
        self.requests = self.errors = 0
        self.outcomes: Counter = Counter()
        self.per_api: dict[str, Counter] = {}
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.backend(request)
        outcome = cache_outcome(response) if self.misses_known else None
        api = "/".join(str(request.get(k, "")) for k in ("category", "tool_name", "api_name"))
        with self._lock:
            self.requests += 1
            self.errors += bool(isinstance(response, dict) and response.get("error"))
            if outcome is not None:
                self.outcomes[outcome] += 1
                self.per_api.setdefault(api, Counter())[outcome] += 1
        return response

    def child(self) -> "CountingBackend":
        """A counter for one query that also counts into this one."""
        return CountingBackend(self, self.misses_known)

    def tool_cache(self) -> dict[str, int] | None:
        """`{hits, misses}` as answer files carry it (None when the server does not say)."""
        if not self.misses_known:
            return None
        return {"hits": self.outcomes["hit"], "misses": self.outcomes["miss"]}

    def metrics(self) -> dict[str, Any]:
        counts = self.tool_cache()
        looked_up = counts["hits"] + counts["misses"] if counts else 0
        return {
            "tool_requests": self.requests,
            "tool_errors": self.errors,
            "tool_cache": counts if counts else "unknown: not a umi tool server, its misses are not marked",
            "cache_hit_rate": counts["hits"] / looked_up if counts and looked_up else None,
            "misses_per_api": {api: c["miss"] for api, c in sorted(self.per_api.items()) if c["miss"]} if counts else None,
        }


__all__ = ["CountingBackend", "RUN_ON_MISS", "ToolServerError", "backend_from_args", "cache_outcome"]
