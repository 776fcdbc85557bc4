"""The corpus manifest, written last: `finish_corpus` after a build or a merge, `rewrite_card`
for `umi-data card` on a corpus built already."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

import umi_data
from umi_data.building.config import CORPUS_OUTPUT, BuildConfig, storable_config
from umi_data.building.memory import release_memory
from umi_data.building.writer import CorpusWriter
from umi_data.corpus.card import write_card
from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, MANIFEST, REJECTS, TRAJECTORIES, CorpusNotFoundError, require_corpus
from umi_data.corpus.stats import card_lengths
from umi_data.plumbing.outdir import OutputClaim, claim_out_dir
from umi_data.plumbing.write import write_json
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS


def finish_corpus(config: BuildConfig, writer: CorpusWriter, exclusions: list, out: Path, claim: OutputClaim | None = None) -> dict[str, Any]:
    """The manifest of a corpus whose files `writer` wrote, then the card, then (with the output
    directory's `claim`, the leftovers of an older corpus swept away) the manifest on disk."""
    manifest = {
        "kind": "umi-corpus",
        "umi_version": umi_data.__version__,
        "config": storable_config(config),
        "counts": writer.stats.as_dict(),
        # Per-file hashes live in inputs.jsonl: the manifest of millions of inputs stays small.
        "inputs": {"files": writer.inputs, "bytes": writer.input_bytes, "sha256": writer.combined_input_hash, "list": INPUTS},
        "exclusion_lists": exclusions,
        "files": {
            TRAJECTORIES: writer.file_entry(TRAJECTORIES, rows=writer.stats.accepted),
            REJECTS: writer.file_entry(REJECTS, rows=writer.stats.read - writer.stats.accepted),
            INPUTS: writer.file_entry(INPUTS, rows=writer.inputs),
        },
        "examples": {role: {"total": sum(c.values()), "A": c["A"], "B": c["B"]} for role, c in writer.splits.items()},
    }
    for role in EXAMPLE_ROLES:
        for suffix in (".parquet", ".jsonl"):
            name = ROLE_PATHS[role] + suffix
            manifest["files"][name] = writer.file_entry(name, rows=manifest["examples"][role]["total"])
    for name, rows in writer.official_rows().items():
        manifest["files"][f"{ALPHA_UMI_DIR}/{name}.json"] = writer.file_entry(f"{ALPHA_UMI_DIR}/{name}.json", rows=rows)
    lengths = card_lengths(writer.lengths)
    writer.lengths.clear()
    release_memory()  # the card's statistics start from a small heap, not the writers' high-water mark
    manifest["files"].update(write_card(out, manifest, lengths, writer.turns.summary()))
    if claim is not None:  # nothing umi wrote for an older corpus (or a killed build) stays beside this one
        hashes = {name: entry["sha256"] for name, entry in manifest["files"].items()}
        claim.kept = claim.sweep([*manifest["files"], MANIFEST], hashes)
    write_json(out / MANIFEST, manifest)
    if claim is not None:
        claim.record(MANIFEST)
    return manifest


def rewrite_card(directory: Path) -> list[Path]:
    """Write the data card of an existing corpus again and update the manifest's file entries."""
    manifest_path = require_corpus(directory) / MANIFEST
    manifest = orjson.loads(manifest_path.read_bytes())
    if not isinstance(manifest.get("inputs"), dict):
        raise CorpusNotFoundError(f"{directory}: built by an older umi (input hashes in the manifest, no inputs.jsonl); build it again")
    with claim_out_dir(directory, CORPUS_OUTPUT) as claim:  # never beside a build writing the same corpus
        entries = write_card(directory, manifest)
        manifest["files"].update(entries)
        claim.sweep([*manifest["files"], MANIFEST], {name: entry["sha256"] for name, entry in manifest["files"].items()})
        write_json(manifest_path, manifest)
        claim.record(MANIFEST)
    return [directory / name for name in entries]


__all__ = ["finish_corpus", "rewrite_card"]
