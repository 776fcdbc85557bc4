"""Train one α-UMi role from Python and generate with it: a tiny model built on the corpus
(`umi_train.tiny.build_tiny`), one LoRA adapter on the planner corpus
(`umi_train.sft.train_adapter`, the Python entry of `umi-train sft`), then `umi_train.load_role`
and `generate` on a planner prompt.

    .venv/bin/python examples/train_role.py CORPUS --out example-run/ [--max-steps 4]

The tiny model is random weights with a tokenizer trained on the corpus: this shows the calls,
not a useful planner. For a real model pass `--model DIR` (any local Hugging Face checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="a corpus directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for tiny/ and planner/")
    parser.add_argument("--model", type=Path, default=None, help="a local model directory (default: build a tiny one)")
    parser.add_argument("--max-steps", type=int, default=4)
    args = parser.parse_args(argv)

    from umi_data import load_corpus
    from umi_train import encode_prompt, load_role
    from umi_train.config import SFTConfig
    from umi_train.sft import train_adapter
    from umi_train.tiny import TinyConfig, build_tiny

    model = args.model or build_tiny(TinyConfig(corpus=args.corpus, out=args.out / "tiny"))
    config = SFTConfig(model=model, corpus=args.corpus, role="planner", out=args.out / "planner",
                       max_steps=args.max_steps, batch_size=2, learning_rate=1e-2, max_eval_examples=4, quiet=True)
    record = train_adapter(config)
    training = record["training"]  # run.json as written
    losses = [point["loss"] for point in training["loss_history"]]
    print(f"planner: {training['steps']} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}, eval loss {training['final_eval_loss']:.3f} -> {config.out}")

    network, tokenizer = load_role(config.out, "planner")
    prompt = load_corpus(args.corpus, "planner")[0]["input"]
    ids = encode_prompt(prompt, tokenizer)
    import torch

    output = network.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    print(f"planner says: {tokenizer.decode(output[0][len(ids):], skip_special_tokens=True)!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
