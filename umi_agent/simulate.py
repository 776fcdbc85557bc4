"""`--on-miss simulate`: a model plays the API, and what it says is kept apart from the recordings.

StableToolBench's idea, in umi's words: the model gets the api's documentation (when a
`toolenv/tools` directory is given), up to five recorded calls of the same api as examples, and
the input, and must answer with the JSON body `{"error": "", "response": ...}`. It is asked
through any OpenAI-compatible `/chat/completions` endpoint (stdlib HTTP, JSON response format
requested, three tries). Answers go into an overlay cache directory, never into the recorded
cache, so a rerun asks nothing again and a user merges them only on purpose (`tool-cache`
over both). Every simulated body is flagged `"umi": {"match": "simulated"}`.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from umi_data.toolcache.keys import canonical_key, exact_key
from umi_data.sources.toolbench_names import Address, standardize, tool_of_dir
from umi_data.toolcache.store import DB_FILE, CacheEntry, CacheStore, CacheWriter

TRIES = 3
EXAMPLE_CHARS = 2048
TIMEOUT = 120.0
SYSTEM_PROMPT = """You stand in for one API of a web tool. You are given its documentation, a few real calls of it with the answers it gave, and a new input.
Reply with the answer the API would give to the new input, as one JSON object and nothing else:
{"error": "", "response": <the API's output: an object, a list or a string>}
Keep "error" empty unless the input itself is wrong for this API; then say what is wrong there and leave "response" empty.
Follow the shape and style of the real answers; be concrete and brief (at most about 200 words)."""


class Simulator:
    """Answers a miss with a model, through an overlay cache of earlier simulated answers."""

    def __init__(self, url: str, model: str, overlay: Path, tools_dir: Path | None = None, timeout: float = TIMEOUT,
                 max_tokens: int = 1024) -> None:
        self.url, self.max_tokens = url.rstrip("/") + "/chat/completions", max_tokens
        self.model, self.overlay, self.tools_dir, self.timeout = model, Path(overlay), tools_dir, timeout
        self.overlay.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = CacheWriter(self.overlay / DB_FILE, append=True)
        self._store = CacheStore(self.overlay)

    def answer(self, address: Address, tool_input: Any, examples: list[tuple[str, str | None, str]]) -> tuple[dict[str, Any], bool]:
        """(flagged body, whether the model was asked now) for an input the recordings lack."""
        exact, canon = exact_key(tool_input), canonical_key(tool_input)
        api_id = self._store.api_id(address)
        found = self._store.find(api_id, exact, canon) if api_id is not None else None
        if found is not None:
            return {**json.loads(found.response), "umi": {"match": "simulated"}}, False
        document = self._ask(address, exact, examples)
        if not document["error"].startswith("simulation failed"):
            with self._write_lock:
                self._writer.add(CacheEntry(address, exact, canon, json.dumps(document, ensure_ascii=False, separators=(",", ":")),
                                            f"simulated by {self.model}"))
                self._writer.commit()
        return {**document, "umi": {"match": "simulated"}}, True

    def _ask(self, address: Address, exact: str, examples: list[tuple[str, str | None, str]]) -> dict[str, Any]:
        shown = [(key, json.loads(response)) for key, _canon, response in examples]
        while len(shown) > 1 and len(json.dumps(shown, ensure_ascii=False)) > EXAMPLE_CHARS:
            shown.pop()
        user = (f"API documentation: {json.dumps(self._documentation(address), ensure_ascii=False)}\n"
                f"Real calls (input, answer): {json.dumps(shown, ensure_ascii=False)[:EXAMPLE_CHARS]}\n"
                f"New input: {exact}\n")
        problem = "no answer"
        for _ in range(TRIES):
            try:
                text = self._chat(user)
            except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
                continue
            document = _body(text)
            if document is not None:
                return document
            problem = f"the model did not answer with a JSON object with error and response: {text[:200]!r}"
        return {"error": f"simulation failed: {problem}", "response": ""}

    def _chat(self, user: str) -> str:
        payload = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens, "response_format": {"type": "json_object"},
                   "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]}
        request = urllib.request.Request(self.url, json.dumps(payload).encode(), {"content-type": "application/json",
                                                                                 "authorization": "Bearer EMPTY"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (a URL the user gave)
            return json.loads(response.read())["choices"][0]["message"]["content"]

    def _documentation(self, address: Address) -> dict[str, Any]:
        """The tool description and the api's entry of `toolenv/tools/{category}/{tool}.json`, when given.
        The file is found by listing the category directory, never by joining request names into a path."""
        doc: dict[str, Any] = {"category": address.category, "tool": tool_of_dir(address.tool_dir, address.category), "api": address.api}
        if self.tools_dir is None or not self.tools_dir.is_dir():
            return doc
        categories = {p.name: p for p in self.tools_dir.iterdir() if p.is_dir()}
        folder = categories.get(address.category)
        files = {p.stem: p for p in folder.glob("*.json")} if folder else {}
        file = files.get(doc["tool"])
        try:
            tool = json.loads(file.read_text(encoding="utf-8")) if file else {}
        except (OSError, ValueError):
            tool = {}
        if isinstance(tool, dict):
            doc["tool_description"] = str(tool.get("tool_description", ""))[:1024]
            doc["api_info"] = [{"name": a.get("name"), "description": str(a.get("description", ""))[:1024]}
                               for a in tool.get("api_list", []) if isinstance(a, dict) and standardize(str(a.get("name", ""))) == address.api]
        return doc


def _body(text: str) -> dict[str, Any] | None:
    text = text.strip().removeprefix("```json").removesuffix("```").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or "response" not in value:
        return None
    error = value.get("error", "")
    return {"error": error if isinstance(error, str) else json.dumps(error), "response": value["response"]}


__all__ = ["SYSTEM_PROMPT", "Simulator"]
