"""`python -m umi_data tool-cache PATH... --out DIR`: index recorded tool responses once.

Inputs, in the order given (the first recording of a key is the one served): cache directories
umi wrote (to merge them, e.g. a simulator's overlay into the recordings, on purpose), corpus
directories (or their `trajectories.parquet`), ToolBench answer files or directories of them,
and StableToolBench `tool_response_cache` directories (or single `{Category}/{tool}/{api}.json`
files). Every JSON file is classified by its content; one that is neither kind is a counted
reject, never a crash. The output directory holds `cache.sqlite` (store.py), `card.json`,
`apis.csv` (entries, duplicates and conflicts per api) and a README.md data card.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from umi_data.plumbing.outdir import Output, atomic_open, atomic_path, claim_out_dir
from umi_data.toolcache.catalog import Catalog, read_catalog
from umi_data.toolcache.collect import Resolver, answer_file_entries, cache_entries, corpus_entries, stb_file_entries
from umi_data.toolcache.store import DB_FILE, FORMAT, CacheEntry, CacheStore, CacheWriter
from umi_data.plumbing.write import write_json

CARD_FILE, APIS_FILE, README = "card.json", "apis.csv", "README.md"
TOOL_CACHE_OUTPUT = Output("umi-data tool-cache", (DB_FILE,), (DB_FILE, CARD_FILE, APIS_FILE, README))
#: A JSON file larger than this is not read (a cache file of one api is rarely over a few MB).
MAX_FILE_BYTES = 512 * 1024 * 1024


class ToolCacheInputError(ValueError):
    """An input path that does not exist (a usage error: one line, exit 2)."""


@dataclass
class BuildCounts:
    outcomes: Counter = field(default_factory=Counter)  # new / conflict / duplicate
    skipped: Counter = field(default_factory=Counter)  # calls not filed, by reason
    files: Counter = field(default_factory=Counter)  # files read, by kind
    rejected: Counter = field(default_factory=Counter)  # files not read, by reason


def build_tool_cache(inputs: Iterable[str | Path], out: Path, categories: Iterable[str | Path] = (), force: bool = False) -> dict[str, Any]:
    """Index every input into `out/cache.sqlite` and write the card; returns the card."""
    inputs = [Path(p) for p in inputs]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise ToolCacheInputError(f"no such file or directory: {', '.join(missing)}")
    catalog = read_catalog(categories)
    counts = BuildCounts()
    with claim_out_dir(Path(out), TOOL_CACHE_OUTPUT, force) as claim:
        with atomic_path(claim.path / DB_FILE) as tmp:
            writer = CacheWriter(tmp)
            try:
                for entry in _entries(inputs, Resolver(catalog, counts.skipped), counts):
                    counts.outcomes[writer.add(entry)] += 1
            finally:
                writer.close()
        card = _write_card(claim.path, inputs, catalog, counts)
        claim.sweep(keep=TOOL_CACHE_OUTPUT.owns)
    return card


def _entries(inputs: list[Path], resolver: Resolver, counts: BuildCounts) -> Iterator[CacheEntry]:
    for path in inputs:
        if path.is_dir() and (path / DB_FILE).is_file():
            counts.files["umi tool cache"] += 1
            yield from cache_entries(path)
        elif path.is_dir() and (path / "trajectories.parquet").is_file():
            counts.files["corpus"] += 1
            yield from corpus_entries(path / "trajectories.parquet", resolver)
        elif path.suffix == ".parquet":
            counts.files["corpus"] += 1
            yield from corpus_entries(path, resolver)
        else:
            files = sorted(p for p in path.rglob("*.json") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                yield from _json_file_entries(file, resolver, counts)


def _json_file_entries(file: Path, resolver: Resolver, counts: BuildCounts) -> Iterator[CacheEntry]:
    document, pairs = _read_json(file, counts)
    if isinstance(document, dict) and isinstance(document.get("answer_generation"), dict):
        counts.files["toolbench answer file"] += 1
        yield from answer_file_entries(document, str(file), resolver)
    elif isinstance(document, dict) and len(file.parts) >= 3 and all(isinstance(v, dict) for v in document.values()):
        counts.files["StableToolBench cache file"] += 1
        yield from stb_file_entries(file, pairs)
    elif document is not None:
        counts.rejected["neither a ToolBench answer file nor a StableToolBench cache file"] += 1


def _read_json(file: Path, counts: BuildCounts) -> tuple[Any, list[tuple[str, Any]]]:
    """The document and its top-level key/value pairs in file order (repeated keys included)."""
    top: list[list[tuple[str, Any]]] = [[]]

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        top[0] = pairs  # the outermost object is the last one completed
        return dict(pairs)

    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            counts.rejected[f"larger than {MAX_FILE_BYTES >> 20} MiB"] += 1
            return None, []
        document = json.loads(file.read_bytes().decode("utf-8"), object_pairs_hook=keep_pairs)
    except OSError:
        counts.rejected["unreadable file"] += 1
        return None, []
    except UnicodeDecodeError:
        counts.rejected["not UTF-8"] += 1
        return None, []
    except (ValueError, RecursionError):
        counts.rejected["invalid JSON"] += 1
        return None, []
    return document, top[0]


def _api_rows(out: Path) -> list[tuple[str, str, str, int, int, int]]:
    """(category, tool_dir, api, entries served, duplicates, conflicts) per api."""
    store = CacheStore(out)
    try:
        return store._db().execute(
            "SELECT a.category, a.tool_dir, a.api, sum(e.rank = 0), a.duplicates, sum(e.rank > 0) "
            "FROM apis a JOIN entries e USING (api_id) GROUP BY a.api_id ORDER BY a.category, a.tool_dir, a.api").fetchall()
    finally:
        store.close()


def _write_card(out: Path, inputs: list[Path], catalog: Catalog, counts: BuildCounts) -> dict[str, Any]:
    rows = _api_rows(out)
    per_category: dict[str, Counter] = {}
    for category, tool_dir, _api, entries, duplicates, conflicts in rows:
        slot = per_category.setdefault(category or "(unknown)", Counter())
        slot.update(entries=entries, apis=1, duplicates=duplicates, conflicts=conflicts)
        slot["tools"] += 0
    tools = Counter((r[0], r[1]) for r in rows)
    for category, _tool in tools:
        per_category[category or "(unknown)"]["tools"] += 1
    card = {
        "format": FORMAT,
        "inputs": [str(p) for p in inputs],
        "keys": sum(r[3] for r in rows), "stored_responses": sum(r[3] + r[5] for r in rows),
        "apis": len(rows), "tools": len(tools), "categories": len(per_category),
        "duplicates": counts.outcomes["duplicate"], "conflicts": counts.outcomes["conflict"],
        "unknown_category_keys": sum(r[3] for r in rows if not r[0]),
        "catalog_tools": len(catalog.categories), "catalog_ambiguous_tools": sorted(catalog.ambiguous),
        "calls_not_filed": dict(sorted(counts.skipped.items())),
        "files_read": dict(sorted(counts.files.items())), "files_rejected": dict(sorted(counts.rejected.items())),
        "per_category": {c: dict(sorted(v.items())) for c, v in sorted(per_category.items())},
        "top_apis": [{"category": r[0], "tool_dir": r[1], "api": r[2], "keys": r[3]} for r in sorted(rows, key=lambda r: -r[3])[:20]],
    }
    write_json(out / CARD_FILE, card)
    _write_apis_csv(out / APIS_FILE, rows)
    with atomic_open(out / README, "w", encoding="utf-8") as handle:
        handle.write(card_markdown(card))
    return card


def _write_apis_csv(path: Path, rows: list[tuple]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["category", "tool_dir", "api", "keys", "duplicates", "conflicts"])
    writer.writerows(rows)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text.getvalue())


def card_markdown(card: dict[str, Any]) -> str:
    """The README.md of a cache directory: what is in it and how it was made."""
    lines = [
        "# Tool response cache", "",
        f"Written by `python -m umi_data tool-cache` ({card['format']}); serve it with "
        "`python -m umi_agent.toolserver --cache DIR`.", "",
        f"- keys: {card['keys']} ({card['stored_responses']} stored responses), apis: {card['apis']}, "
        f"tools: {card['tools']}, categories: {card['categories']}",
        f"- duplicates (same key, same response; counted once): {card['duplicates']}",
        f"- conflicts (same key, another response; kept, the first served): {card['conflicts']}",
        f"- keys under the unknown category (no category in the source or --categories): {card['unknown_category_keys']}",
        f"- calls not filed: {json.dumps(card['calls_not_filed'])}",
        f"- files read: {json.dumps(card['files_read'])}; rejected: {json.dumps(card['files_rejected'])}", "",
        "| category | keys | apis | tools | duplicates | conflicts |", "|---|---:|---:|---:|---:|---:|",
    ]
    for category, c in card["per_category"].items():
        lines.append(f"| {category} | {c.get('entries', 0)} | {c.get('apis', 0)} | {c.get('tools', 0)} | {c.get('duplicates', 0)} | {c.get('conflicts', 0)} |")
    lines += ["", "Entries per api: `apis.csv`. Inputs:", ""] + [f"- `{p}`" for p in card["inputs"]]
    return "\n".join(lines + PLAYING) + "\n"


#: the card's last section: where the published cache and the queries come from, and the two commands
PLAYING = [
    "", "## Playing ToolBench queries against a cache", "",
    "StableToolBench's published cache (`tool_response_cache/`, about 165k recorded responses: "
    "https://huggingface.co/datasets/stabletoolbench/Cache) and its 765 solvable queries "
    "(`solvable_queries/test_instruction/{G1_instruction,...}.json` of https://github.com/THUNLP-MT/StableToolBench) "
    "are not shipped with umi; umi reads that cache directory as it is (indexed once beside it) or a cache written "
    "by this command. Play a group, then score it with any OpenAI-compatible judge:", "",
    "```",
    "python -m umi_agent.run --run RUN --toolbench-queries G1_instruction.json --cache DIR --out live/ [--search dfsdt]",
    "python -m umi_agent.passrate live/NAME/answer --judge-url URL --judge-model MODEL --out scores/",
    "```", "",
    "A miss is an error the model sees, counted per api in `live/metrics.json` (`cache_hit_rate`, `misses_per_api`); "
    "it is never answered from nothing.",
]


INDEX_SUFFIX = ".umi-index"


def cache_dir_for(path: str | Path, log: Any = None) -> Path:
    """A cache directory to serve for `path`: `path` itself when umi wrote it; for a
    StableToolBench `tool_response_cache/` given as it is, its index `path.umi-index/` beside it,
    built on first use (delete it to index again after the cache files change)."""
    path = Path(path)
    if (path / DB_FILE).is_file() or not path.is_dir() or next(path.glob("*/*/*.json"), None) is None:
        return path  # umi's own cache, or not a cache at all (CacheStore says which)
    index = path.with_name(path.name + INDEX_SUFFIX)
    if not (index / DB_FILE).is_file():
        if log is not None:
            log(f"indexing the StableToolBench cache {path} into {index} (once)")
        build_tool_cache([path], index)
    return index


__all__ = ["INDEX_SUFFIX", "TOOL_CACHE_OUTPUT", "ToolCacheInputError", "build_tool_cache", "cache_dir_for", "card_markdown"]
