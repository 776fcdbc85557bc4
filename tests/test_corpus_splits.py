"""`load_corpus(DIR, role, split=...)`: train / validation / test by instruction, as HF datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

import umi_data
from umi_data.__main__ import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("splits")
    assert main(["synth", "--n", "200", "--out", str(root / "world"), "--quiet"]) == 0
    assert main(["build", "toolbench", str(root / "world" / "answer"), "--out", str(root / "corpus"), "--quiet"]) == 0
    return root / "corpus"


def test_splits_are_by_instruction_and_cover_every_example(corpus: Path) -> None:
    whole = umi_data.load_corpus(corpus, "planner")
    parts = umi_data.load_corpus(corpus, "planner", split="all", held_out=(0.1, 0.1))
    assert list(parts) == ["train", "validation", "test"]
    assert sum(len(parts[name]) for name in parts) == len(whole)
    ids = {name: set(parts[name]["instruction_id"]) for name in parts}
    assert not (ids["train"] & ids["validation"]) and not (ids["train"] & ids["test"]) and not (ids["validation"] & ids["test"])
    assert all(len(parts[name]) for name in parts)  # 200 instructions: every split holds some
    assert sorted(parts["test"]["example_id"]) == sorted(umi_data.load_corpus(corpus, "planner", split="test", held_out=(0.1, 0.1))["example_id"])


def test_one_instruction_is_in_the_same_split_in_every_role(corpus: Path) -> None:
    split_of = {}
    for role in ("planner", "caller", "summarizer", "trajectories"):
        parts = umi_data.load_corpus(corpus, role, split="all", held_out=(0.1, 0.1))
        for name in parts:
            for instruction in parts[name]["instruction_id"]:
                assert split_of.setdefault(instruction, name) == name


def test_the_seed_and_shares_choose_and_bad_values_say_so(corpus: Path) -> None:
    a = umi_data.load_corpus(corpus, "caller", split="test", held_out=(0.1, 0.2), seed=0)
    b = umi_data.load_corpus(corpus, "caller", split="test", held_out=(0.1, 0.2), seed=1)
    assert set(a["instruction_id"]) != set(b["instruction_id"])
    assert len(umi_data.load_corpus(corpus, "caller", split="test", held_out=(0.0, 0.0))) == 0
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        umi_data.load_corpus(corpus, "caller", split="dev")
    with pytest.raises(ValueError, match="held_out shares"):
        umi_data.load_corpus(corpus, "caller", split="all", held_out=(0.6, 0.5))
