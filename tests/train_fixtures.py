"""The tiny corpus and model the training tests share: one definition, imported by each
test module that trains (`from train_fixtures import corpus, model`), module-scoped there."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from umi_train.testing import sample_corpus, single_thread, tiny_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    return sample_corpus(tmp_path_factory.getbasetemp() / "umi-train" / "corpus")


@pytest.fixture(scope="module")
def model(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.getbasetemp() / "umi-train" / "tiny", corpus)


def generate_each_role(run: Path, corpus: Path, roles: Iterable[str], max_new_tokens: int) -> Iterator[tuple[str, list[int], Any, Any]]:
    """For each role: (role, prompt ids, greedy output ids, tokenizer) of the run's model for that
    role on the first input of the role's corpus, reloaded from disk."""
    import torch

    from umi_train import encode_prompt, load_role
    from umi_train.data import read_role_rows

    for role in roles:
        model, tokenizer = load_role(run, role)
        prompt = encode_prompt(read_role_rows(corpus, role)[0]["input"], tokenizer)
        with torch.no_grad():
            output = model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False)
        yield role, prompt, output, tokenizer
