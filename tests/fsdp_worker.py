"""One process of tests/test_train_distributed.py's FSDP2 check (run by torchrun, not collected
by pytest): umi's LoRA model, sharded with torch's `fully_shard` (FSDP2) or replicated with DDP,
trained two steps on packed batches of this rank's examples over gloo; rank 0 writes the whole
adapter as umi gathers it (`lora_tensors`) with every rank's digest of it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as distributed


def wrap(model, mode: str):
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (distributed.get_world_size(),))
    for layer in model.base_model.model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def main(mode: str, model_dir: Path, examples_file: Path, out: Path) -> None:
    from safetensors.torch import save_file

    from umi_train.collate import PackingCollator
    from umi_train.config import TrainOptions
    from umi_train.lora import adapter_state, attach_lora, load_base, lora_tensors
    from umi_train.provenance import tensors_sha256

    distributed.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = distributed.get_rank()
    torch.manual_seed(0)
    base = load_base(model_dir)
    base.config.use_cache = False
    peft_model = attach_lora(base, TrainOptions(lora_dropout=0.0))
    model = wrap(peft_model, mode)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    examples = json.loads(examples_file.read_text())[rank::2]
    for step in range(2):
        model(**PackingCollator()(examples[2 * step:2 * step + 2])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tensors = lora_tensors(peft_model)
    digests: list = [None] * distributed.get_world_size()
    distributed.all_gather_object(digests, tensors_sha256(adapter_state(peft_model, tensors)))
    if rank == 0:
        save_file({name: tensor.contiguous() for name, tensor in adapter_state(peft_model, tensors).items()}, out / f"{mode}.safetensors")
        (out / f"{mode}.json").write_text(json.dumps({"digests": digests, "sharded": any(hasattr(p, "full_tensor") for p in peft_model.parameters())}))
    distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
