"""Data cards (`card DIR`, written by `build` too) and `umi_data.corpus.stats`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from umi_data.corpus import stats
from umi_data.__main__ import main
from umi_data.corpus.card import PLOTS, STATS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "umi_data" / "samples" / "toolbench" / "answer"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    assert main(["build", "toolbench", str(SAMPLE), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    return tmp_path / "c"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_yaml_names_a_config_per_role_and_its_plots_open(corpus: Path) -> None:
    card = (corpus / "README.md").read_text()
    meta = front_matter(card)
    assert [c["config_name"] for c in meta["configs"]] == ["trajectories", "backbone", "planner", "caller", "summarizer"]
    assert meta["license"] == "apache-2.0" and meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    for config in meta["configs"]:
        assert (corpus / config["data_files"][0]["path"]).is_file()
    for relative in PLOTS.values():
        assert f"]({relative})" in card
        with Image.open(corpus / relative) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] >= 600
    manifest = json.loads((corpus / "manifest.json").read_text())
    for name in ["README.md", STATS, *PLOTS.values()]:
        assert manifest["files"][name]["sha256"] == hashlib.sha256((corpus / name).read_bytes()).hexdigest()


def test_card_tables_show_the_manifest(corpus: Path) -> None:
    card = (corpus / "README.md").read_text()
    counts = json.loads((corpus / "manifest.json").read_text())["counts"]
    assert f"| {counts['read']} | {counts['accepted']} | {counts['rejected']} |" in card
    assert "| invalid_data | 1 |" in card
    assert "/tmp" not in card and str(SAMPLE) not in card  # nothing machine-specific


def test_card_command_rewrites_identically(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p: (corpus / p).read_bytes() for p in ["README.md", STATS, *PLOTS.values(), "manifest.json"]}
    for relative in PLOTS.values():
        (corpus / relative).unlink()
    assert main(["card", str(corpus)]) == 0
    assert {p: (corpus / p).read_bytes() for p in before} == before
    assert main(["card", str(corpus.parent / "missing")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_stats_counts_match_the_manifest(corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text())
    numbers = stats.corpus_stats(corpus)
    assert numbers["counts"]["trajectories"] == manifest["counts"]["accepted"]
    assert numbers["counts"]["by_outcome"] == {k: v for k, v in manifest["counts"]["outcomes"].items() if v}
    assert numbers["counts"]["rejects_by_reason"] == manifest["counts"]["rejected_by_reason"]
    assert numbers["counts"]["turns_by_role"] == manifest["counts"]["turns"]
    assert sum(s["trajectories"] for s in numbers["steps"]) == manifest["counts"]["accepted"]
    assert sum(t["calls"] for t in numbers["calls_per_tool"]) == manifest["counts"]["turns"]["caller"]
    by_role = {r["role"]: r["examples"] for r in numbers["lengths"] if r["measure"] == "input_chars"}
    assert by_role == {role: c["total"] for role, c in manifest["examples"].items()}


def test_turn_counts_agree_with_each_trajectory_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps, calls, roles and tools are counted over a batch's flattened turns; batches of 7 rows
    make trajectories at every batch position count, against a plain count per trajectory."""
    from collections import Counter

    import pyarrow.parquet as pq

    assert main(["synth", "--n", "40", "--seed", "3", "--out", str(tmp_path / "world")]) == 0
    corpus = tmp_path / "c"
    assert main(["build", "toolbench", str(tmp_path / "world" / "answer"), "--out", str(corpus), "--no-progress"]) == 0
    monkeypatch.setattr(stats, "BATCH_ROWS", 7)
    rows = pq.read_table(corpus / "trajectories.parquet").to_pylist()
    assert len(rows) == 40 and len({r["outcome"] for r in rows}) > 1
    expected = sorted((r["id"], r["outcome"], sum(t["role"] == "planner" and t["next"] is not None for t in r["turns"]),
                       sum(t["role"] == "caller" for t in r["turns"])) for r in rows)
    assert stats.steps_per_trajectory(corpus).rows() == expected
    summary = stats.turn_summary(corpus)
    groups = Counter((r["source"], r["outcome"], steps) for r, (_, _, steps, _) in zip(sorted(rows, key=lambda r: r["id"]), expected))
    assert summary.groups.rows() == [(*key, n) for key, n in sorted(groups.items())]
    assert summary.turns_by_role == dict(sorted(Counter(t["role"] for r in rows for t in r["turns"]).items()))
    tools = Counter(t["name"] for r in rows for t in r["turns"] if t["role"] == "caller")
    assert summary.calls_per_tool.rows() == sorted(tools.items(), key=lambda item: (-item[1], item[0]))


def test_token_lengths_with_a_local_tokenizer(corpus: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = stats.example_lengths(corpus)  # only to show the corpus is readable first
    assert texts.height > 0
    import polars as pl

    corpus_text = pl.read_parquet(corpus / "local" / "planner.parquet")["input"].to_list()
    tokenizer.train_from_iterator(corpus_text, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    lengths = stats.example_lengths(corpus, tmp_path / "tokenizer.json").filter(pl.col("role") == "planner")
    expected = [len(tokenizer.encode(text, add_special_tokens=False).ids) for text in corpus_text]
    assert lengths["input_tokens"].to_list() == expected
    assert all(0 < t < c for t, c in zip(lengths["input_tokens"], lengths["input_chars"]))
    assert {r["measure"] for r in stats.length_summary(lengths)} >= {"input_tokens", "target_tokens"}


def test_card_lengths_of_tables_with_and_without_chunks() -> None:
    """The builder measures every examples table it writes; one read back with no chunk at all
    (a part without examples of a role) must not break the card's frame."""
    import pyarrow as pa

    from umi_data.rendering.examples import EXAMPLE_SCHEMA, text_lengths
    from umi_data.corpus.stats import card_lengths

    row = {"example_id": "t/backbone/0", "trajectory_id": "t", "instruction_id": "i", "role": "backbone", "step": 0,
           "input": "ab\u00e9", "target": "c", "split": "A", "source": "synthetic"}
    empty = pa.Table.from_batches([], schema=EXAMPLE_SCHEMA)
    one = pa.Table.from_pylist([row], schema=EXAMPLE_SCHEMA)
    frame = card_lengths({"backbone": [text_lengths(empty), text_lengths(one)], "planner": [text_lengths(empty)]})
    assert frame.rows() == [("backbone", 3, 1)]
