"""Recorded tool responses, from every place umi finds them, as `CacheEntry` records.

Three inputs:
- a corpus directory (or its `trajectories.parquet`): every caller turn followed by an
  observation, whatever the source (ToolBench, α-UMi, agent runs, the synthetic world);
- raw ToolBench answer files: the last chain first, then the other chains and the DFS tree's
  observations (a corpus keeps only the chosen chain);
- StableToolBench's `tool_response_cache/{Category}/{tool_dir}/{api}.json` files, read as they
  are (the last three parts of the path are the address; keys are `str(dict)` reprs; a key that
  appears twice serves its last value, as `json.load` would, the earlier ones kept as conflicts).

A call that cannot be filed is counted by reason, never dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from umi_data.core import ObservationTurn, Trajectory
from umi_data.toolcache.catalog import FUNCTIONS_META, Catalog, split_function
from umi_data.toolcache.keys import keys_of_input, keys_of_repr
from umi_data.sources.toolbench_names import Address, change_name, standardize, standardize_category, tool_dir_name
from umi_data.toolcache.store import CacheEntry

FINISH = "Finish"


def body(value: Any) -> str:
    """A response body as StableToolBench's FastAPI server writes it: compact, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def observation_body(content: str | None, turn: ObservationTurn | None = None) -> tuple[str, bool]:
    """(body, truncated) of a recorded observation: the verbatim envelope when its text is JSON
    (so a client's `json.dumps` writes it again byte for byte), else what could be recovered."""
    if content is not None:
        try:
            value = json.loads(content)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return body(value), False
    if turn is None:
        from umi_data.sources.toolbench import parse_observation

        turn = parse_observation(content or "")
    return body({"error": turn.error, "response": turn.response}), turn.truncated


class Resolver:
    """Function name -> address, from a trajectory's tools (and meta) and the catalog."""

    def __init__(self, catalog: Catalog, skipped: Counter) -> None:
        self.catalog, self.skipped = catalog, skipped

    def addresses(self, tools: list[tuple[str, str]], meta: dict[str, Any] | None = None) -> dict[str, Address]:
        known = (meta or {}).get(FUNCTIONS_META)
        out: dict[str, Address] = {}
        for name, description in tools:
            given = known.get(name) if isinstance(known, dict) else None
            address = self._from_meta(given) if isinstance(given, dict) else self._from_name(name, description)
            if address is not None:
                out[name] = address
        return out

    def _from_meta(self, given: dict[str, Any]) -> Address | None:
        parts = [given.get(k) for k in ("category", "tool", "api")]
        if not all(isinstance(p, str) and p for p in parts):
            return None
        category, tool, api = parts
        return Address(standardize_category(category), tool_dir_name(tool, category), change_name(standardize(api)))

    def _from_name(self, name: str, description: str) -> Address | None:
        split = split_function(name, description)
        if split is None:
            return None
        tool, api = split
        category = self.catalog.category(tool)
        if len(name) >= 64:
            api = self.catalog.full_api(tool, api, name)
        return Address(standardize_category(category), tool_dir_name(tool, category), api)

    def address(self, name: str, addresses: dict[str, Address]) -> Address | None:
        """A called name's address; an unlisted name matches the first function ending with it,
        as ToolBench's environment matched calls."""
        if name in addresses:
            return addresses[name]
        for full, address in addresses.items():
            if name and full.endswith(name):
                return address
        self.skipped["called function not in the tool list"] += 1
        return None


def entry(address: Address, raw_arguments: str, content: str | None, origin: str, skipped: Counter,
          turn: ObservationTurn | None = None) -> CacheEntry | None:
    keys = keys_of_input(raw_arguments)
    if keys is None:
        skipped["arguments that do not parse as JSON (the server answers these with its parse error)"] += 1
        return None
    response, truncated = observation_body(content, turn)
    return CacheEntry(address, keys[0], keys[1], response, origin, truncated)


def corpus_entries(path: Path, resolver: Resolver) -> Iterator[CacheEntry]:
    """Entries of a corpus's trajectories, in file order."""
    from umi_data.corpus.rows import read_trajectories

    for trajectory in read_trajectories(str(path)):
        yield from _trajectory_entries(trajectory, resolver, f"{path}#{trajectory.id}")


def _trajectory_entries(trajectory: Trajectory, resolver: Resolver, origin: str) -> Iterator[CacheEntry]:
    addresses = resolver.addresses([(t.name, t.description) for t in trajectory.tools], trajectory.meta)
    for index, (call, observation) in enumerate(zip(trajectory.turns, trajectory.turns[1:])):
        if call.role != "caller" or observation.role != "observation" or call.name == FINISH:
            continue
        address = resolver.address(call.name, addresses)
        if address is not None:
            found = entry(address, call.raw_arguments, observation.raw, f"{origin}@{index}", resolver.skipped, observation)
            if found is not None:
                yield found


def answer_file_entries(document: dict[str, Any], origin: str, resolver: Resolver) -> Iterator[CacheEntry]:
    """Every observed call of a ToolBench answer file: last chain, other chains, then the tree."""
    generation = document.get("answer_generation") or {}
    functions = [f for f in generation.get("function") or [] if isinstance(f, dict) and isinstance(f.get("name"), str)]
    addresses = resolver.addresses([(f["name"], str(f.get("description", ""))) for f in functions])
    chains = generation.get("train_messages") or []
    for number, chain in [(len(chains) - 1, chains[-1])] + list(enumerate(chains[:-1])) if chains else []:
        for call, arguments, content, where in _chain_calls(chain):
            yield from _call_entry(call, arguments, content, addresses, resolver, f"{origin}#train_messages[{number}]{where}")
    tree = (document.get("tree") or {}).get("tree") if isinstance(document.get("tree"), dict) else None
    for call, arguments, content, where in _tree_calls(tree):
        yield from _call_entry(call, arguments, content, addresses, resolver, f"{origin}#tree{where}")


def _call_entry(name: Any, arguments: Any, content: Any, addresses: dict[str, Address], resolver: Resolver,
                origin: str) -> Iterator[CacheEntry]:
    if not (isinstance(name, str) and isinstance(arguments, str) and isinstance(content, str)) or name == FINISH:
        return
    address = resolver.address(name, addresses)
    found = entry(address, arguments, content, origin, resolver.skipped) if address is not None else None
    if found is not None:
        yield found


def _chain_calls(chain: Any) -> Iterator[tuple[Any, Any, Any, str]]:
    messages = chain if isinstance(chain, list) else []
    for index, (message, reply) in enumerate(zip(messages, messages[1:])):
        call = message.get("function_call") if isinstance(message, dict) else None
        if isinstance(call, dict) and isinstance(reply, dict) and reply.get("role") == "function":
            yield call.get("name"), call.get("arguments"), reply.get("content"), f"[{index}]"


def _tree_calls(root: Any) -> Iterator[tuple[Any, Any, Any, str]]:
    """(function, arguments, observation, where) of each Action node's observed Action Input child."""
    stack = [(root, "")] if isinstance(root, dict) else []
    while stack:
        node, where = stack.pop()
        children = [c for c in node.get("children") or [] if isinstance(c, dict)]
        if node.get("node_type") == "Action":
            for child in children:
                if child.get("node_type") == "Action Input" and "observation" in child:
                    yield node.get("description"), child.get("description"), child.get("observation"), where
        stack.extend((child, f"{where}/{i}") for i, child in reversed(list(enumerate(children))))


def stb_file_entries(path: Path, pairs: list[tuple[str, Any]]) -> Iterator[CacheEntry]:
    """Entries of one StableToolBench cache file (`pairs`: its keys in file order, repeats included)."""
    category, tool_dir, api = path.parts[-3], path.parts[-2], path.stem
    address = Address(category, tool_dir, api)
    values: dict[str, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    for key, seen in values.items():
        exact, canon = keys_of_repr(key)
        for value in reversed(seen):  # the last value is what json.load (and so the server) keeps
            yield CacheEntry(address, exact, canon, body(value), f"{path}")


def cache_entries(directory: Path) -> Iterator[CacheEntry]:
    """The entries of a cache directory umi wrote, served ones first within each key as stored."""
    from umi_data.toolcache.store import CacheStore

    store = CacheStore(directory)
    try:
        for category, tool_dir, api, exact, _rank, response, origin, truncated in store.rows():
            yield CacheEntry(Address(category, tool_dir, api), exact, keys_of_repr(exact)[1], response, origin, bool(truncated))
    finally:
        store.close()


__all__ = ["Resolver", "cache_entries", "answer_file_entries", "body", "corpus_entries", "observation_body", "stb_file_entries"]
