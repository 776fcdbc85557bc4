"""The tiny corpus and model the training tests share: one definition, imported by each
test module that trains (`from train_fixtures import corpus, model`), module-scoped there."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi_train.testing import sample_corpus, single_thread, tiny_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    return sample_corpus(tmp_path_factory.getbasetemp() / "umi-train" / "corpus")


@pytest.fixture(scope="module")
def model(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.getbasetemp() / "umi-train" / "tiny", corpus)
