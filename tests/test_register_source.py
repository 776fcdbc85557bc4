"""`umi_data.sources.register_source`: a source of one's own builds like a built-in one, in
worker processes too (same bytes as one process), and cannot shadow umi's own names."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.sources import UnknownSourceError, get_source, register_source
from umi_data.sources.base import Source, discover_files, read_source

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def helpdesk():
    """examples/custom_source.py imported as a module (workers import it by this name)."""
    spec = importlib.util.spec_from_file_location("custom_source", REPO / "examples" / "custom_source.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_source"] = module
    spec.loader.exec_module(module)
    sys.path.insert(0, str(REPO / "examples"))  # spawned workers unpickle `custom_source.convert`
    register_source(module.SOURCE, "help-desk logs", module.SCHEMA)
    yield module
    sys.path.remove(str(REPO / "examples"))


def _log(tmp_path: Path, records: list) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_registered_source_reads_and_rejects_by_its_schema(helpdesk, tmp_path: Path) -> None:
    assert get_source("helpdesk-log") is helpdesk.SOURCE and helpdesk.SOURCE.description == "help-desk logs"
    items = list(read_source(helpdesk.SOURCE, discover_files([_log(tmp_path, helpdesk.RECORDS)], (".jsonl",))))
    assert [type(i).__name__ for i in items] == ["Trajectory", "Trajectory", "Trajectory", "Reject"]
    assert items[2].turns[2].hallucinated and items[3].locator == "$[3]"


def test_workers_build_the_same_bytes(helpdesk, tmp_path: Path) -> None:
    log = _log(tmp_path, helpdesk.RECORDS * 40)
    config = BuildConfig(source="helpdesk-log", inputs=[str(log)])
    one = build_corpus(config, tmp_path / "one", progress=False, workers=1)
    two = build_corpus(config, tmp_path / "two", progress=False, workers=2)
    assert one.manifest["counts"]["accepted"] == 120 and one.manifest["counts"]["rejected"] == 40
    for name in ("trajectories.parquet", "rejects.jsonl", "local/planner.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_umi_names_cannot_be_replaced(helpdesk) -> None:
    with pytest.raises(ValueError, match="umi's own"):
        register_source(Source(name="toolbench", schema="x.schema.json", records_per_file="one", convert=helpdesk.convert), "x")
    with pytest.raises(ValueError, match="umi's own"):
        register_source(Source(name="mine", schema="toolbench_answer.schema.json", records_per_file="one", convert=helpdesk.convert), "x", {})
    with pytest.raises(UnknownSourceError, match="helpdesk-log"):
        get_source("nope")


def test_a_registered_source_that_workers_cannot_import_does_not_break_other_builds(tmp_path: Path) -> None:
    """A source registered in this process whose module a fresh worker process cannot import
    (defined in a notebook cell, or a path since removed) is not sent to the workers of a build
    that reads another source."""
    from umi_data import sources

    def convert(record, ctx):  # a local function: a spawned worker cannot unpickle it
        return None

    register_source(Source(name="unimportable-here", schema="unimportable.schema.json", records_per_file="records",
                           convert=convert), "only in this process")
    try:
        from importlib import resources

        sample = resources.files("umi_data") / "samples" / "toolbench" / "answer"
        result = build_corpus(BuildConfig(source="toolbench", inputs=[str(sample)]), tmp_path / "c", progress=False, workers=2)
        assert result.manifest["counts"]["accepted"] > 0
    finally:
        sources._REGISTERED.pop("unimportable-here", None)
