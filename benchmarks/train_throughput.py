"""Trained (non-padding) tokens per second: umi's collation against the official recipe's.

The official α-UMi trainer pads every example to `model_max_length` (4096). umi packs each
batch into one padding-free row (position ids restarting per example), on models whose
attention keeps packed examples apart (checked as `python -m umi_train.sft` does; the others
get dynamic padding); batches are grouped by length. Dynamic padding (each batch padded to its
longest example) is timed too, for its padding share. All are timed in one run, with the same
model (identical LoRA copies), corpus, examples and batch size, one pass over the examples
each, interleaved step by step so that load from other processes on the machine falls on all
alike. Each line gives the share of positions that are padding; the last line printed is
`ratio: X.XX` (umi's collation over pad-to-max-length).

    python benchmarks/train_throughput.py                       # ToolBench example corpus, tiny model
    python benchmarks/train_throughput.py --model DIR --corpus DIR --role planner --batch-size 8

By default the corpus is built from ../shared/data/toolbench/answer (the ToolBench example
files), or from the repository's sample when that is absent (with a note), and the model is
the tiny model built on that corpus.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
TOOLBENCH_ANSWER = REPO.parent / "shared" / "data" / "toolbench" / "answer"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a built corpus directory (default: build the ToolBench example corpus)")
    parser.add_argument("--model", type=Path, help="a local HF model directory (default: the tiny model built on the corpus)")
    parser.add_argument("--role", default="backbone", help="role corpus to train on (default: backbone, the stage-1 corpus)")
    parser.add_argument("--batch-size", type=int, default=4, help="examples per step, the same for both (default: 4)")
    parser.add_argument("--max-length", type=int, default=4096, help="model_max_length, the baseline's padded length (default: 4096)")
    parser.add_argument("--max-steps", type=int, help="stop each pass after N steps (default: one pass over the examples)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1, stable timings on a shared machine; 0: torch's default)")
    return parser.parse_args(argv)


def default_corpus(work: Path) -> Path:
    from umi_data.building.build import BuildConfig, build_corpus
    from umi_train.testing import sample_answer_dir

    if TOOLBENCH_ANSWER.is_dir():
        source = TOOLBENCH_ANSWER
    else:
        source = sample_answer_dir()
        print(f"note: {TOOLBENCH_ANSWER} is absent; using the repository sample {source} instead")
    build_corpus(BuildConfig(source="toolbench", inputs=[str(source)]), work / "corpus", progress=False)
    print(f"corpus: built from {source}")
    return work / "corpus"


def encoded_examples(args: argparse.Namespace, corpus: Path, tokenizer: Any) -> list[dict[str, list[int]]]:
    from umi_train.data import select_examples
    from umi_train.encode import encode
    from umi_train.sft import roles_of

    rows = select_examples(corpus, roles_of(args.role), None)
    return [encode(row["input"], row["target"], tokenizer, args.max_length, example_id=row["example_id"]) for row in rows]


def batch_orders(lengths: list[int], batch_size: int) -> dict[str, list[list[int]]]:
    """Example indices per step: a seeded random order (baseline) and the Trainer's
    length-grouped order (dynamic and packed), cut into batches of `batch_size`."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    def cut(order: list[int]) -> list[list[int]]:
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    random_order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    grouped = cut(list(get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(0))))
    return {"max-length": cut(random_order), "dynamic": grouped, "packed": grouped}


def lora_copy(model_dir: Path, packed: bool) -> tuple[Any, Any, bool]:
    """The base model with a fresh LoRA (same seed, so all copies are identical), its optimizer,
    and, for packed batches, whether the model keeps packed examples apart (as in sft, with
    per-example attention where it can)."""
    import torch
    from transformers import set_seed

    from umi_train.attention import enable_packing
    from umi_train.config import TrainOptions
    from umi_train.lora import attach_lora, load_base

    set_seed(0)
    base = load_base(model_dir)
    packable = enable_packing(base) if packed else False
    base.config.use_cache = False
    model = attach_lora(base, TrainOptions(lora_dropout=0.0))
    model.train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4), packable


def train_step(model: Any, optimizer: Any, batch: dict[str, Any]) -> float:
    """One optimizer step; its wall time in seconds."""
    start = time.perf_counter()
    model(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def measure(args: argparse.Namespace, model_dir: Path, corpus: Path) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """Every collation over the same examples, one step of each in turn (after one untimed
    warm-up step each); packed only where the model keeps packed examples apart."""
    from transformers import AutoTokenizer

    from umi_train.collate import make_collator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = encoded_examples(args, corpus, tokenizer)
    lengths = [len(example["input_ids"]) for example in examples]
    orders = batch_orders(lengths, args.batch_size)
    steps = min(len(orders["dynamic"]), args.max_steps or len(orders["dynamic"]))
    runs = {}
    for padding, order in orders.items():
        model, optimizer, packable = lora_copy(model_dir, padding == "packed")
        if padding == "packed" and not packable:
            print(f"note: {model_dir} lets packed examples see each other; umi pads its batches (dynamic) instead")
            continue
        collate = make_collator(tokenizer, padding, args.max_length)
        batches = [collate([examples[i] for i in indices]) for indices in order[:steps]]
        train_step(model, optimizer, batches[0])  # warm-up: allocator and kernel set-up are not throughput
        runs[padding] = {"model": model, "optimizer": optimizer, "batches": batches, "seconds": 0.0}
    for step in range(steps):
        for run in runs.values():
            run["seconds"] += train_step(run["model"], run["optimizer"], run["batches"][step])
    for run in runs.values():
        run["tokens"] = sum(real_tokens(batch) for batch in run["batches"])
        run["positions"] = sum(batch["input_ids"].numel() for batch in run["batches"])
        run["steps"] = steps
    return runs, lengths


def real_tokens(batch: dict[str, Any]) -> int:
    """Positions holding a token of an example (a packed row has no padding and no attention mask)."""
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()


def report(name: str, run: dict[str, Any]) -> float:
    rate = run["tokens"] / run["seconds"]
    padding = 1 - run["tokens"] / run["positions"]
    print(f"{name}: {run['tokens']} trained tokens, padding {padding:.1%} of {run['positions']} positions, "
          f"in {run['steps']} steps, {run['seconds']:.1f} s -> {rate:.1f} tokens/s")
    return rate


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="umi-throughput-") as tmp:
        work = Path(tmp)
        corpus = args.corpus or default_corpus(work)
        if args.model is None:
            from umi_train.testing import tiny_model

            args.model = tiny_model(work / "tiny", corpus)
            print(f"model: the tiny model built on the corpus ({args.model})")
        runs, lengths = measure(args, args.model, corpus)
    print(f"{args.role}: {len(lengths)} examples, mean {sum(lengths) / len(lengths):.0f} tokens, max {max(lengths)}; "
          f"batch size {args.batch_size}, model_max_length {args.max_length}, {args.threads or 'default'} CPU thread(s)")
    slow = report(f"pad to model_max_length ({args.max_length})", runs["max-length"])
    dynamic = report("dynamic padding, length-grouped batches", runs["dynamic"])
    fast = report("umi (packed, no padding, length-grouped batches)", runs["packed"]) if "packed" in runs else dynamic
    print(f"ratio: {fast / slow:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
