"""The response cache on disk: one SQLite file, indexed once, read without parsing JSON.

Why SQLite: a lookup is one indexed point query (tens of microseconds, measured in
benchmarks/toolserver_throughput.py against DuckDB over Parquet), the page cache is bounded, so
a server's memory does not grow with the cache, and Python ships the engine.

Layout of `DIR/cache.sqlite`:
- `apis(api_id, category, tool_dir, api, duplicates)`: one row per StableToolBench cache file
  address (`{category}/{tool_dir}/{api}.json`); category "" when the source did not say.
- `entries(entry_id, api_id, exact_hash, exact_key, canon_hash, canon_key, rank, response,
  response_hash, origin, truncated)`: `exact_key` is StableToolBench's `str(input)`, `canon_key`
  umi's canonical JSON (keys.py); `response` the `{"error", "response"}` body as compact JSON
  (what StableToolBench's FastAPI server sends for it), `rank` 0 for the response served and
  1, 2, ... for recorded responses of the same key that disagree with it (conflicts: kept, never
  overwritten); an identical repeat is counted in `apis.duplicates`, not stored twice.
- `info(key, value)`: the format version.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

from umi_data.sources.toolbench_names import Address, tool_of_dir

DB_FILE = "cache.sqlite"
FORMAT = "umi-tool-cache/1"
#: SQLite page cache per connection (KiB): what a reader holds whatever the cache size.
PAGE_CACHE_KIB = 8192
#: Addresses whose api id a reader remembers (a few MB at most; cleared when full).
API_MEMO = 65536

_SCHEMA = """
CREATE TABLE info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apis(api_id INTEGER PRIMARY KEY, category TEXT NOT NULL, tool_dir TEXT NOT NULL, api TEXT NOT NULL,
                  duplicates INTEGER NOT NULL DEFAULT 0, UNIQUE(category, tool_dir, api));
CREATE TABLE entries(entry_id INTEGER PRIMARY KEY, api_id INTEGER NOT NULL, exact_hash INTEGER NOT NULL,
                     exact_key TEXT NOT NULL, canon_hash INTEGER, canon_key TEXT, rank INTEGER NOT NULL,
                     response TEXT NOT NULL, response_hash INTEGER NOT NULL, origin TEXT NOT NULL,
                     truncated INTEGER NOT NULL);
"""
_INDEXES = """
CREATE INDEX entries_exact ON entries(api_id, exact_hash);
CREATE INDEX entries_canon ON entries(api_id, canon_hash);
"""


def key_hash(text: str | None) -> int | None:
    """A signed 64-bit digest: the index holds 8 bytes per key, the row the key itself."""
    if text is None:
        return None
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class CacheError(ValueError):
    """A directory that is not a cache umi wrote (a usage error: one line)."""


@dataclass(frozen=True)
class CacheEntry:
    """One recorded response: where it belongs, its two keys, and the body to send."""

    address: Address
    exact_key: str
    canon_key: str | None
    response: str  # the JSON body, compact
    origin: str  # the file (and place in it) it was read from
    truncated: bool = False  # the source cut the response (ToolBench's 1024 characters + "...")


class Found(NamedTuple):
    response: str
    match: str  # "exact" or "canonical"
    exact_key: str


class CacheWriter:
    """Writes entries into a cache file: a new one (an empty or absent `path`, which the caller
    moves into place) or, with `append`, an existing one (the overlay of simulated answers)."""

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        fresh = not path.exists() or path.stat().st_size == 0
        if not fresh and not append:
            raise CacheError(f"{path}: exists; a new cache is written to a new file")
        self.db = sqlite3.connect(path, check_same_thread=False)
        if fresh:
            self.db.executescript(_SCHEMA + _INDEXES)
            self.db.execute("INSERT INTO info VALUES ('format', ?)", (FORMAT,))
            self.db.commit()
        if not append:
            self.db.execute("PRAGMA synchronous=OFF")
        self._apis: dict[Address, int] = {}
        self._duplicates: dict[int, int] = {}

    def add(self, entry: CacheEntry) -> str:
        """Store one entry: "new", "conflict" (same key, another response: kept with a higher
        rank) or "duplicate" (same key and response: counted only)."""
        api_id = self._api_id(entry.address)
        exact_hash, response_hash = key_hash(entry.exact_key), key_hash(entry.response)
        seen = self.db.execute("SELECT response_hash, response FROM entries WHERE api_id=? AND exact_hash=? AND exact_key=?",
                               (api_id, exact_hash, entry.exact_key)).fetchall()
        if any(h == response_hash and text == entry.response for h, text in seen):
            self._duplicates[api_id] = self._duplicates.get(api_id, 0) + 1
            return "duplicate"
        self.db.execute("INSERT INTO entries(api_id, exact_hash, exact_key, canon_hash, canon_key, rank, response, response_hash,"
                        " origin, truncated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (api_id, exact_hash, entry.exact_key, key_hash(entry.canon_key), entry.canon_key, len(seen),
                         entry.response, response_hash, entry.origin, int(entry.truncated)))
        return "conflict" if seen else "new"

    def _api_id(self, address: Address) -> int:
        api_id = self._apis.get(address)
        if api_id is None:
            row = self.db.execute("SELECT api_id FROM apis WHERE category=? AND tool_dir=? AND api=?", address).fetchone()
            api_id = row[0] if row else self.db.execute("INSERT INTO apis(category, tool_dir, api) VALUES (?,?,?)", address).lastrowid
            self._apis[address] = api_id
        return api_id

    def commit(self) -> None:
        self.db.executemany("UPDATE apis SET duplicates = duplicates + ? WHERE api_id = ?",
                            [(n, api_id) for api_id, n in self._duplicates.items()])
        self._duplicates.clear()
        self.db.commit()

    def close(self) -> None:
        self.commit()
        self.db.close()


class CacheStore:
    """Read side of a cache directory; thread-safe (one read-only connection per thread)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        if not self.path.is_file():
            raise CacheError(f"{self.directory}: not a tool cache (no {DB_FILE}); index one with `python -m umi_data tool-cache`")
        self._local = threading.local()
        self._api_memo: dict[Address, int | None] = {}
        fmt = self._db().execute("SELECT value FROM info WHERE key='format'").fetchone()
        if fmt is None or fmt[0] != FORMAT:
            raise CacheError(f"{self.path}: format {fmt[0] if fmt else None!r}, expected {FORMAT!r}; index the cache again")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            db.execute("PRAGMA mmap_size=0")
            self._local.db = db
        return db

    def api_id(self, address: Address) -> int | None:
        """The api's id (remembered for up to `API_MEMO` addresses, hits and misses alike)."""
        memo = self._api_memo
        if address in memo:
            return memo[address]
        if len(memo) >= API_MEMO:
            memo.clear()
        memo[address] = found = self._api_id(address)
        return found

    def _api_id(self, address: Address) -> int | None:
        """The api's id; an address of a known category whose tool is only filed under an unknown
        category ("", from sources that do not name categories) falls back to that."""
        query = "SELECT api_id FROM apis WHERE category=? AND tool_dir=? AND api=?"
        row = self._db().execute(query, address).fetchone()
        if row is None and address.category:
            row = self._db().execute(query, ("", tool_of_dir(address.tool_dir, address.category), address.api)).fetchone()
        return row[0] if row else None

    def find(self, api_id: int, exact: str, canon: str | None) -> Found | None:
        """The served response (rank 0 first) for the exact key, else for the canonical key."""
        found = self.find_exact(api_id, exact)
        return found if found is not None or canon is None else self.find_canonical(api_id, canon)

    def find_exact(self, api_id: int, exact: str) -> Found | None:
        row = self._db().execute("SELECT response FROM entries WHERE api_id=? AND exact_hash=? AND exact_key=? "
                                 "ORDER BY rank, entry_id LIMIT 1", (api_id, key_hash(exact), exact)).fetchone()
        return Found(row[0], "exact", exact) if row else None

    def find_canonical(self, api_id: int, canon: str) -> Found | None:
        row = self._db().execute("SELECT response, exact_key FROM entries WHERE api_id=? AND canon_hash=? AND canon_key=? "
                                 "ORDER BY rank, entry_id LIMIT 1", (api_id, key_hash(canon), canon)).fetchone()
        return Found(row[0], "canonical", row[1]) if row else None

    def entries_of(self, api_id: int, limit: int) -> list[tuple[str, str | None, str]]:
        """(exact key, canonical key, response) of an api's served entries, in recorded order."""
        return self._db().execute("SELECT exact_key, canon_key, response FROM entries WHERE api_id=? AND rank=0 "
                                  "ORDER BY entry_id LIMIT ?", (api_id, limit)).fetchall()

    def rows(self) -> Iterator[tuple]:
        """(category, tool_dir, api, exact_key, rank, response, origin, truncated) of every entry, in order."""
        yield from self._db().execute(
            "SELECT a.category, a.tool_dir, a.api, e.exact_key, e.rank, e.response, e.origin, e.truncated "
            "FROM entries e JOIN apis a USING (api_id) ORDER BY e.entry_id")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


__all__ = ["CacheEntry", "CacheError", "CacheStore", "CacheWriter", "DB_FILE", "FORMAT", "Found", "key_hash"]
