"""`python -m umi_train.tiny`: a tiny random-weight model (Llama by default, or any causal LM
architecture transformers knows, `--architecture mixtral`) and a tokenizer trained on a corpus.

Tests and the offline demo need a real causal LM that trains in seconds on CPU and downloads
nothing. The tokenizer is a byte-level BPE trained with `tokenizers` on the corpus's inputs and
targets, with `<s>`, `</s>`, `<unk>` and `<pad>` as special tokens, so the literal `</s>` that
α-UMi writes into histories and targets is read as the EOS token, as a Llama tokenizer does.
The output is an ordinary Hugging Face model directory (config, safetensors, tokenizer files,
generation config) plus `umi_model.json`; the same corpus and seed give the same model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from umi_data.rendering.examples import EXAMPLE_ROLES
from umi_data.plumbing.outdir import OutDirError, Output, atomic_dir, previous_owns
from umi_train.config import UsageError, parse_config, run_cli
from umi_train.data import check_corpus, read_role_rows
from umi_train.provenance import MODEL_FILE, corpus_identity, write_model_card

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
PROG = "umi-train tiny"
TINY_OUTPUT = Output(command=PROG, markers=(MODEL_FILE,), owns=())


class TinyConfig(BaseModel):
    """`python -m umi_train.tiny`: what tiny model to build."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: Path = Field(description="corpus directory whose inputs and targets train the tokenizer")
    out: Path = Field(description="model directory to write")
    tokenizer: Path | None = Field(default=None, description="reuse the tokenizer of this model directory instead of training one on the corpus")
    architecture: str = Field(default="llama", description="transformers model type (llama, qwen3_moe, gpt2, gemma3_text...): the sizes below are set on its config wherever it has the field")
    vocab_size: int = Field(default=2048, ge=300, description="BPE vocabulary size, special tokens included (at least the 256 bytes + specials)")
    hidden_size: int = Field(default=64, ge=8, description="model width")
    num_layers: int = Field(default=2, ge=1, description="decoder layers")
    num_heads: int = Field(default=4, ge=1, description="attention heads")
    intermediate_size: int = Field(default=192, ge=8, description="MLP width (each expert's, for MoE architectures)")
    num_experts: int = Field(default=4, ge=2, description="experts per MoE layer (MoE architectures only), 2 of them active per token")
    max_position_embeddings: int = Field(default=4096, ge=64, description="longest sequence the model accepts")
    init_std: float = Field(default=0.1, gt=0, description="standard deviation of the initial weights (larger than the usual 0.02 so that a LoRA on the frozen random model can move its logits within a few steps)")
    seed: int = Field(default=0, description="seed of the weight initialisation")


def corpus_texts(corpus: Path) -> Iterator[str]:
    """Every input and target of every role corpus, in a fixed order."""
    for role in EXAMPLE_ROLES:
        for row in read_role_rows(corpus, role):
            yield row["input"]
            yield row["target"]


#: a ChatML-like template on the tiny tokenizer's own tokens (each turn `<s>role\n...</s>\n`), so that
#: `--prompt-format chat` is tested on the tiny model as on an instruction-tuned one
CHAT_TEMPLATE = ("{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def train_tokenizer(texts: Iterator[str], vocab_size: int, model_max_length: int) -> Any:
    """A byte-level BPE wrapped as a `PreTrainedTokenizerFast` with Llama's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    bos = backend.token_to_id("<s>")
    # like Llama's tokenizer: `tokenizer(text)` starts with BOS (umi_train.encode adds it the same way)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        model_max_length=model_max_length, padding_side="right", clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def model_config(config: TinyConfig, tokenizer: Any) -> Any:
    """The architecture's config with umi's sizes, each set under whichever name the architecture
    uses (`n_embd`, `ffn_dim`, `num_local_experts`...) and only where it has one."""
    from transformers import AutoConfig

    heads, hidden, inner = config.num_heads, config.hidden_size, config.intermediate_size
    sizes = {
        "vocab_size": len(tokenizer), "hidden_size": hidden, "num_hidden_layers": config.num_layers, "num_attention_heads": heads,
        "num_key_value_heads": heads, "head_dim": hidden // heads, "intermediate_size": inner, "ffn_dim": inner, "n_inner": inner,
        "ffn_hidden_size": inner, "moe_intermediate_size": inner, "num_local_experts": config.num_experts, "num_experts": config.num_experts,
        "num_experts_per_tok": 2, "word_embed_proj_dim": hidden, "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": False, "initializer_range": config.init_std, "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
    }
    try:
        default = AutoConfig.for_model(config.architecture)
    except ValueError:
        from umi_train.config import UsageError

        raise UsageError(f"--architecture {config.architecture!r}: not a model type this transformers knows") from None
    known = set(default.to_dict()) | set(default.attribute_map)
    return AutoConfig.for_model(config.architecture, **{name: value for name, value in sizes.items() if name in known})


def build_model(config: TinyConfig, tokenizer: Any) -> Any:
    """A randomly initialised causal LM of `config.architecture` sized by `config`, seeded."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config(config, tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny(config: TinyConfig) -> Path:
    """Write the tokenizer and model into `config.out` (atomically: a temporary directory beside
    it, renamed into place once `umi_model.json` is written)."""
    check_corpus(config.corpus)
    try:  # a model directory umi wrote is replaced; anything else is never deleted
        previous_owns(config.out, TINY_OUTPUT)
    except OutDirError as exc:
        raise UsageError(f"--out {exc}") from None
    if config.tokenizer is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.tokenizer, model_max_length=config.max_position_embeddings)
    else:
        tokenizer = train_tokenizer(corpus_texts(config.corpus), config.vocab_size, config.max_position_embeddings)
    model = build_model(config, tokenizer)
    with atomic_dir(config.out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        parameters = sum(parameter.numel() for parameter in model.parameters())
        write_model_card(tmp, {"kind": "umi-tiny", "config": config.model_dump(mode="json", exclude={"out"}), "parameters": parameters,
                               "corpus": corpus_identity(config.corpus)})
    return config.out


def main(argv: list[str] | None = None) -> int:
    config = parse_config(TinyConfig, argv, PROG, "Build a tiny random-weight causal LM and a BPE tokenizer trained on a corpus.")

    def command() -> int:
        out = build_tiny(config)
        from umi_train.provenance import read_json

        card = read_json(out / "umi_model.json") or {}
        print(f"tiny model: {card.get('parameters')} parameters, vocabulary {config.vocab_size} -> {out}")
        return 0

    return run_cli(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
