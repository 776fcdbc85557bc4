"""What a build is asked (`BuildConfig`, recorded in the manifest), what it returns
(`BuildResult`) and the output directory it owns (`CORPUS_OUTPUT`): shared by `build`, its
shards and `merge`, so that none of them imports another."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from umi_data.building.fields import BUILD_FIELDS, DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED
from umi_data.building.shard_checks import SHARD_MANIFEST
from umi_data.core import Reject
from umi_data.corpus.card import CARD, CARD_DIR
from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, MANIFEST, REJECTS, TRAJECTORIES
from umi_data.plumbing.outdir import Output
from umi_data.plumbing.write import sha256_file
from umi_data.sources.base import text_name


def corpus_record(directory: Path) -> dict[str, str] | None:
    """What an older umi recorded writing into `directory`, before the lock held a record: the
    file hashes of its corpus manifest (`manifest.json` of kind `umi-corpus` listing sha256 of
    every file, with `trajectories.parquet` there at its recorded size); None otherwise: a
    directory that merely holds a file named manifest.json is not a corpus."""
    try:
        manifest = orjson.loads((directory / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) and manifest.get("kind") == "umi-corpus" else None
    if not isinstance(files, dict) or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in files.values()):
        return None
    entry, trajectories = files.get(TRAJECTORIES), directory / TRAJECTORIES
    if entry is None or not trajectories.is_file() or trajectories.stat().st_size != entry.get("bytes"):
        return None
    record = {str(name): entry["sha256"] for name, entry in files.items()}
    record[MANIFEST] = sha256_file(directory / MANIFEST)
    return record


#: what `build` (and `--shard`) writes into its --out; `card` rewrites there under the same lock
CORPUS_OUTPUT = Output(
    command="umi-data build", markers=(MANIFEST, SHARD_MANIFEST),
    owns=(TRAJECTORIES, REJECTS, INPUTS, MANIFEST, SHARD_MANIFEST, CARD, CARD_DIR, "global", "local", ALPHA_UMI_DIR),
    legacy_record=corpus_record,
)


class BuildConfig(BaseModel):
    """What `python -m umi_data build` was asked to do (recorded in the manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description=BUILD_FIELDS["source"])
    inputs: list[str] = Field(min_length=1, description=BUILD_FIELDS["inputs"])
    exclude_test_ids: list[str] = Field(default_factory=list, description=BUILD_FIELDS["exclude_test_ids"])
    strict: bool = Field(default=False, description=BUILD_FIELDS["strict"])
    compat: Literal["alpha-umi"] | None = Field(default=None, description=BUILD_FIELDS["compat"])
    split_seed: int = Field(default=DEFAULT_SPLIT_SEED, description=BUILD_FIELDS["split_seed"])
    split_ratio: float = Field(default=DEFAULT_SPLIT_RATIO, ge=0.0, le=1.0, description=BUILD_FIELDS["split_ratio"])


@dataclass
class BuildResult:
    out: Path
    manifest: dict[str, Any]
    rejects: list[Reject]  # the first MAX_REJECTS_KEPT
    #: files in the directory that umi did not write (kept, not part of the corpus)
    kept: list[str] = field(default_factory=list)



def storable_config(config: BuildConfig) -> dict[str, Any]:
    """The config for a manifest, with paths that are not UTF-8 written `\\xNN` (`text_name`)."""
    dumped = config.model_dump()
    for key in ("inputs", "exclude_test_ids"):
        dumped[key] = [text_name(path) for path in dumped[key]]
    return dumped


__all__ = ["BuildConfig", "BuildResult", "CORPUS_OUTPUT", "corpus_record", "storable_config"]
