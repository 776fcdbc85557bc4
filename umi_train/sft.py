"""`python -m umi_train.sft`: one LoRA adapter on one role corpus (or the multi-task union).

A run directory is complete when `run.json` exists (written last); `config.json` is written
when the run starts so that `--resume` can refuse to continue with different options.

    RUN/config.json        resolved config (written first)
    RUN/checkpoints/       Trainer checkpoints (adapter, optimizer, scheduler, RNG states)
    RUN/adapter/           the final adapter and the tokenizer
    RUN/loss.png           training and held-out loss against the step
    RUN/run.json           config, corpus manifest sha256, base model identity, versions,
                           loss history, eval loss, world size, adapter digest per rank
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from umi_data.plumbing.outdir import OutDirError, Output, atomic_dir, claim_out_dir, previous_owns
from umi_data.rendering.variants import VARIANTS
from umi_data.plumbing.write import write_json
from umi_train import dist
from umi_train.checkpoints import checkpoints_newest_first, resumable_checkpoint, same_training
from umi_train.config import SFTConfig, TrainOptions, UsageError, parse_config, run_cli
from umi_train.data import Selection, check_corpus, encode_rows, position_limit, resolve_max_length, select_examples, split_eval
from umi_train.plots import LOSS_PLOT, run_loss_plot
from umi_train.lora import adapter_state, attach_lora, describe, load_base, lora_report, lora_tensors
from umi_train.provenance import RUN_FILE, corpus_identity, model_identity, read_json, tensors_sha256, versions, write_run

PROG = "umi-train sft"
CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
#: options that do not change what is trained (a run may be resumed with others)
_RUN_ONLY = {"resume", "quiet", "stage1_from", "report_to"}
SFT_OUTPUT = Output(command=PROG, markers=(RUN_FILE, CONFIG_FILE), owns=(CONFIG_FILE, CHECKPOINTS, ADAPTER, RUN_FILE, LOSS_PLOT))


def roles_of(role: str) -> tuple[str, ...]:
    """The role corpora a `--role` trains on: one, or the multi-task variant's union."""
    if role == "multi-task":
        return VARIANTS["multi-task"].stages[0].parts[0].roles
    return (role,)


def comparable(config: TrainOptions) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude=_RUN_ONLY)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint directory, verified or not (see `checkpoints.resumable_checkpoint`)."""
    found = checkpoints_newest_first(run_dir / CHECKPOINTS)
    return found[0] if found else None


def finished_run(config: SFTConfig) -> dict[str, Any] | None:
    """The finished run in `--out` if it was trained with the same options (to skip), None when
    `--out` holds no finished run; an error when it holds one trained otherwise. Only what changes
    the training is compared, so a moved or renamed run directory still matches."""
    done = read_json(config.out / RUN_FILE)
    if done is not None and not same_training(done["config"], comparable(config)):
        raise UsageError(f"--out {config.out}: holds a finished run with different options; choose another --out")
    return done


def check_run_dir(config: SFTConfig) -> dict[str, Any] | None:
    """The finished run in `--out` with the same options (to skip), None to train; an error for
    a run directory that holds something else."""
    done = finished_run(config)
    if done is not None:
        return done
    started = read_json(config.out / CONFIG_FILE)
    if started is not None and not same_training(started, comparable(config)):
        raise UsageError(f"--out {config.out}: an interrupted run with different options is there; choose another --out")
    if last_checkpoint(config.out) and not config.resume:
        raise UsageError(f"--out {config.out}: holds checkpoints of an interrupted run; pass --resume to continue it")
    return None


@contextmanager
def locked_run_dir(out: Path, output: Output) -> Iterator[None]:
    """The output-directory policy on every rank, the lock on rank 0 (which writes the files)."""
    try:
        if dist.is_main():
            with claim_out_dir(out, output):
                yield
        else:
            previous_owns(out, output)
            yield
    except OutDirError as exc:
        raise UsageError(f"--out {exc}") from None


@dataclass(frozen=True)
class Prepared:
    """Everything a run trains with, and what was decided from the model rather than the options
    (`config.json` keeps the options as given, run.json records these)."""

    tokenizer: Any
    model: Any
    train: Any
    eval: Any | None
    selection: Selection
    max_length: int
    padding: str  # --padding, or `dynamic` where the model does not keep packed examples apart
    notes: tuple[str, ...]  # the one-line notes printed at the start

    @property
    def truncated(self) -> int:
        """Examples whose input lost tokens from its start to fit `max_length`."""
        return sum(1 for data in (self.train, self.eval) if data is not None for cut in data["truncated"] if cut)


def training_arguments(config: SFTConfig, prepared: Prepared) -> Any:
    from transformers import TrainingArguments

    cpu = dist.use_cpu()
    return TrainingArguments(
        output_dir=str(config.out / CHECKPOINTS), seed=config.seed, data_seed=config.seed,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_steps=config.max_steps or -1, num_train_epochs=config.epochs,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, eval_strategy="steps" if prepared.eval is not None else "no",
        eval_steps=config.eval_steps or config.save_steps, report_to=list(config.report_to or ["none"]), disable_tqdm=not progress_bar(config),
        remove_unused_columns=False, label_names=["labels"], length_column_name="length",
        train_sampling_strategy="random" if prepared.padding == "max-length" else "group_by_length",
        include_num_input_tokens_seen="all" if prepared.padding == "packed" else "non_padding",
        use_cpu=cpu, ddp_backend="gloo" if cpu and dist.world_size() > 1 else None,
        activation_checkpointing=config.gradient_checkpointing, **dist.precision(config.bf16, config.fp16),
        dataloader_num_workers=0, ddp_find_unused_parameters=False,
    )


def progress_bar(config: SFTConfig) -> bool:
    """A tqdm bar on a terminal; progress lines (`umi_train.progress`) elsewhere; `--quiet`: neither."""
    return not config.quiet and sys.stderr.isatty()


def build_trainer(config: SFTConfig, prepared: Prepared) -> Any:
    """A `Trainer` with umi's collation (packed, or padded per `--padding`) and an example order
    fixed by seed and epoch (`umi_train.sampling`: resuming from any checkpoint is exact)."""
    from transformers.trainer_callback import PrinterCallback

    from umi_train.sampling import UmiTrainer as Trainer

    from umi_train.collate import make_collator
    from umi_train.progress import ProgressLines

    lines = [] if config.quiet or progress_bar(config) else [ProgressLines(PROG, f"{config.role} (split {config.split})")]
    try:
        trainer = Trainer(
            model=prepared.model, args=training_arguments(config, prepared), train_dataset=prepared.train,
            eval_dataset=prepared.eval, data_collator=make_collator(prepared.tokenizer, prepared.padding, prepared.max_length),
            processing_class=prepared.tokenizer, callbacks=lines,
        )
    except (ValueError, RuntimeError, ImportError) as exc:
        if not config.report_to:
            raise
        # an unknown integration, or one whose package is missing (tensorboard, wandb...): the flag's fault
        raise UsageError(f"--report-to {' '.join(config.report_to)}: {str(exc).splitlines()[0]}") from None
    trainer.remove_callback(PrinterCallback)  # without a bar, Trainer prints every log dict: progress lines replace it
    return trainer


def choose_padding(config: SFTConfig, model: Any) -> tuple[str, str | None]:
    """`--padding`, except packed on a model whose attention mixes packed examples: dynamic, with a note."""
    from umi_train.attention import enable_packing

    if config.padding != "packed" or enable_packing(model):
        return config.padding, None
    return "dynamic", (f"{model.config.model_type} with {model.config._attn_implementation} attention lets packed examples see "
                       "each other; padding batches instead (--padding dynamic)")


def prepare(config: SFTConfig) -> Prepared:
    """Tokenizer, LoRA model, encoded train/eval datasets (user errors raised before any training)."""
    from transformers import AutoTokenizer, set_seed

    dist.check_attention(config.attn_implementation)
    dist.precision(config.bf16, config.fp16)
    max_length, length_note = resolve_max_length(config.max_length, position_limit(config.model))
    rows = select_examples(config.corpus, roles_of(config.role), None if config.split == "all" else config.split)
    selection = split_eval(rows, config.eval_fraction, config.max_eval_examples)
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    train = encode_rows(selection.train, tokenizer, max_length, config.compat, config.prompt_format, config.tool_docs)
    eval_dataset = encode_rows(selection.eval, tokenizer, max_length, config.compat, config.prompt_format, config.tool_docs) if selection.eval else None
    set_seed(config.seed)
    base = load_base(config.model, config.attn_implementation)
    padding, padding_note = choose_padding(config, base)
    base.config.use_cache = False  # a cache in training would also hide packed examples' boundaries from the mask
    model = attach_lora(base, config)
    notes = tuple(note for note in (length_note, padding_note, describe(lora_report(model))) if note)
    return Prepared(tokenizer, model, train, eval_dataset, selection, max_length, padding, notes)


def history(log_history: list[dict[str, Any]], key: str) -> list[dict[str, float]]:
    return [{"step": entry["step"], key: entry[key]} for entry in log_history if key in entry]


def run_record(config: SFTConfig, trainer: Any, prepared: Prepared, digests: list[str], resumed: Path | None) -> dict[str, Any]:
    state, args, selection = trainer.state, trainer.args, prepared.selection
    eval_losses = history(state.log_history, "eval_loss")
    return {
        "kind": "umi-sft-run",
        "config": comparable(config),
        "corpus": corpus_identity(config.corpus),
        "base_model": model_identity(config.model),
        "versions": versions(),
        "data": {"roles": list(roles_of(config.role)), "split": config.split, "train_examples": len(selection.train),
                 "eval_examples": len(selection.eval), "eval_instructions": sorted(selection.eval_instructions),
                 "max_length": prepared.max_length, "truncated_examples": prepared.truncated},
        "training": {
            "world_size": args.world_size, "global_batch_size": args.train_batch_size * args.gradient_accumulation_steps * args.world_size,
            "steps": state.global_step, "epochs": state.epoch, "tokens_seen": state.num_input_tokens_seen,
            "padding": prepared.padding, "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "attn_implementation": prepared.model.config._attn_implementation,
            "resumed_from": resumed.name if resumed else None,
            "loss_history": history(state.log_history, "loss"), "eval_history": eval_losses,
            "final_eval_loss": eval_losses[-1]["eval_loss"] if eval_losses else None,
        },
        "lora": lora_report(prepared.model),
        "adapter": {"path": ADAPTER, "sha256": digests[0], "sha256_per_rank": digests},
    }


def save_adapter(model: Any, tokenizer: Any, run_dir: Path, tensors: dict[str, Any] | None = None) -> None:
    """The adapter (`tensors`: its whole LoRA tensors, gathered by every rank when sharded) and
    the tokenizer into RUN/adapter, atomically (a temporary directory renamed)."""
    with atomic_dir(run_dir / ADAPTER) as tmp:
        model.save_pretrained(tmp, state_dict=tensors)
        tokenizer.save_pretrained(tmp)


def _announce(config: SFTConfig, prepared: Prepared, resumed: Path | None) -> None:
    if dist.is_main():
        selection, start = prepared.selection, f", resuming from {resumed.name}" if resumed else ""
        for note in prepared.notes:
            print(f"{PROG}: {note}", flush=True)
        print(f"{PROG}: {config.role} (split {config.split}): {len(selection.train)} train / {len(selection.eval)} eval examples "
              f"({len(selection.eval_instructions)} held-out instructions; {prepared.truncated} cut to {prepared.max_length} tokens), "
              f"{prepared.padding} batches, world size {dist.world_size()}{start} -> {config.out}", flush=True)


def train_adapter(config: SFTConfig) -> dict[str, Any]:
    """Train (or resume, or skip when finished) the run `config` describes, holding the run
    directory's lock; its run record."""
    check_corpus(config.corpus)
    model_identity(config.model)  # a missing model is a usage error before anything is loaded
    dist.init_process_group()
    with locked_run_dir(config.out, SFT_OUTPUT):
        return _train_adapter(config)


def _train_adapter(config: SFTConfig) -> dict[str, Any]:
    done = check_run_dir(config)
    if done is not None:
        if dist.is_main():
            print(f"{PROG}: {config.out} is complete; nothing to do", flush=True)
        return done
    prepared = prepare(config)
    if dist.is_main():
        config.out.mkdir(parents=True, exist_ok=True)
        write_json(config.out / CONFIG_FILE, comparable(config))
    resumed = resumable_checkpoint(config.out / CHECKPOINTS, PROG, set_aside=dist.is_main()) if config.resume else None
    _announce(config, prepared, resumed)
    trainer = build_trainer(config, prepared)
    trainer.train(resume_from_checkpoint=str(resumed) if resumed else None)
    evaluated = history(trainer.state.log_history, "eval_loss")
    if prepared.eval is not None and (not evaluated or evaluated[-1]["step"] != trainer.state.global_step):
        trainer.evaluate()
    tensors = lora_tensors(prepared.model)  # whole on every rank, also when FSDP shards them
    digests = dist.gather(tensors_sha256(adapter_state(prepared.model, tensors)))
    record = run_record(config, trainer, prepared, digests, resumed)
    if dist.is_main():
        save_adapter(prepared.model, prepared.tokenizer, config.out, tensors)
        run_loss_plot(config.out, record)  # before run.json: a complete run has its picture
        write_run(config.out, record)
    dist.barrier()
    return record


def rounded(value: float | None) -> str:
    """A loss for a human line: 4 decimals (run.json keeps full precision), `n/a` when there is none."""
    return "n/a" if value is None else f"{value:.4f}"


def summary_line(record: dict[str, Any], run_file: Path) -> str:
    losses, training = record["training"]["loss_history"], record["training"]
    first, last = (losses[0]["loss"], losses[-1]["loss"]) if losses else (None, None)
    return (f"{PROG}: {training['steps']} steps, loss {rounded(first)} -> {rounded(last)}, "
            f"eval loss {rounded(training['final_eval_loss'])} -> {run_file}")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(SFTConfig, argv, PROG, "Train one LoRA adapter on one role corpus of a umi corpus directory.")

    def command() -> int:
        record = train_adapter(config)
        if dist.is_main():
            print(summary_line(record, config.out / RUN_FILE))
        return 0

    return run_cli(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
