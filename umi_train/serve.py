"""`python -m umi_train.serve RUN [--out DIR]`: serve a GLPFT run's agent with a real server.

α-UMi is a natural fit for multi-LoRA serving: one backbone in memory, the planner, caller and
summarizer as three adapters of it. This command prints the exact launch lines, and writes
what they need:

- vLLM multi-LoRA: `vllm serve BASE --enable-lora --lora-modules planner=... caller=...
  summarizer=...` on the run's own adapters (`--max-lora-rank` from the run's `--lora-r`);
- `transformers serve`, which loads full models, not adapters: each role's adapter merged into
  its base, written to `DIR/<part>/` (a request names one by its absolute path);
- `DIR/tokenizer/`: the run's tokenizer, for the client to cut over-long prompts as the local
  backend does (`umi_agent.run --tokenizer`);
- `DIR/serve.json`: roles, models, adapters and the launch lines, written last.

Every model directory carries `umi_model.json` with the run's compat mode (the client adds the
`"system: "` prefix for α-UMi compat runs) and prompt format (the client renders a `chat` run's
prompts through the tokenizer's chat template), and a generation config that stops at the
tokenizer's EOS, where the local backend stops. Reruns skip merged models already written.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from umi_data.plumbing.cli import Parser, fail
from umi_data.plumbing.outdir import OutDirError, Output, atomic_dir, claim_out_dir
from umi_data.plumbing.write import write_json
from umi_train.load import agent_roles, resolve_role
from umi_train.provenance import MODEL_FILE, read_json, write_model_card

PROG = "umi-train serve"
SERVE_FILE = "serve.json"
TOKENIZER = "tokenizer"
#: --out holds the tokenizer, one merged model per part (owned per run) and serve.json
SERVE_OUTPUT = Output(command=PROG, markers=(SERVE_FILE,), owns=(TOKENIZER, SERVE_FILE))
#: the ranks vLLM accepts for --max-lora-rank (the run's rank is rounded up to one of them)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class ServeError(ValueError):
    """Not a finished GLPFT run, or a run vLLM cannot serve as asked (one line, exit 2)."""


def role_plan(run: Path) -> dict[str, dict[str, Any]]:
    """Per agent role: the part that plays it, its base model and its adapter (None: the base
    model plays the role as it is)."""
    record = read_json(run / "glpft.json")
    if record is None:
        raise ServeError(f"{run}: no glpft.json; give a finished `umi-train glpft` run directory")
    plan = {}
    for role in agent_roles(record["variant"]):
        base, adapter = resolve_role(run, role)
        part = adapter.parent.name if adapter is not None else base.name
        plan[role] = {"part": part, "base": str(base.resolve()), "adapter": str(adapter.resolve()) if adapter else None}
    return plan


def write_role_model(run: Path, role: str, target: Path, card: dict[str, Any]) -> None:
    """The role's model as `load_role` builds it for the local backend (adapter merged), saved as
    a full model directory; atomic (a temporary directory renamed into place)."""
    from umi_train.load import load_role

    done = read_json(target / MODEL_FILE)
    if done is not None and _without_versions(done) == card:
        return  # written by an earlier call for the same run
    model, tokenizer = load_role(run, role)
    model.generation_config.eos_token_id = tokenizer.eos_token_id  # stop where the local backend stops
    if tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_model_card(tmp, card)


def write_tokenizer(run: Path, role: str, target: Path, card: dict[str, Any]) -> bool:
    """The run's tokenizer in `target`; whether it encodes a prompt as training does (a server
    tokenizes the prompt text with the tokenizer's own special tokens, training adds BOS by
    `umi_train.encode`'s rule: where they differ, served and local models see other ids)."""
    from transformers import AutoTokenizer

    from umi_train.encode import encode_prompt

    base, adapter = resolve_role(run, role)
    tokenizer = AutoTokenizer.from_pretrained(adapter or base)
    tokenizer.save_pretrained(target)
    write_model_card(target, card)
    sample, modes = "user: What is the weather in Paris?", {"prompt_format": card.get("prompt_format", "alpha-umi")}
    if modes["prompt_format"] == "chat":  # the client sends the rendered template: the server must add no token to it
        from umi_train.encode import fit_prompt

        return list(tokenizer(fit_prompt(sample, tokenizer, 4096, **modes))["input_ids"]) == encode_prompt(sample, tokenizer, **modes)
    return list(tokenizer(sample)["input_ids"]) == encode_prompt(sample, tokenizer)


def _without_versions(card: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in card.items() if key != "versions"}


def vllm_lines(plan: dict[str, dict[str, Any]], lora_rank: int, tokenizer: Path, host: str, port: int) -> list[str]:
    """`vllm serve` with every adapter on the one base model, and the agent command using it."""
    bases = {entry["base"] for entry in plan.values()}
    if len(bases) > 1:
        return [f"# the roles are on different base models ({', '.join(sorted(bases))}): start one vLLM server per base"]
    adapters = {entry["part"]: entry["adapter"] for entry in plan.values() if entry["adapter"]}
    rank = next((r for r in VLLM_LORA_RANKS if r >= lora_rank), lora_rank)
    serve = ["vllm", "serve", bases.pop(), "--host", host, "--port", str(port)]
    if adapters:
        serve += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(len(adapters)),
                  "--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
    names = {role: entry["part"] if entry["adapter"] else entry["base"] for role, entry in plan.items()}
    return [shlex.join(serve), agent_line(names, host, port, tokenizer)]


def transformers_lines(plan: dict[str, dict[str, Any]], merged: dict[str, Path], host: str, port: int) -> list[str]:
    serve = ["transformers", "serve", "--host", host, "--port", str(port)]
    return [shlex.join(serve), agent_line({role: str(merged[role]) for role in plan}, host, port, None)]


def agent_line(names: dict[str, str], host: str, port: int, tokenizer: Path | None) -> str:
    models = [arg for role, name in names.items() for arg in ("--model", f"{role}={name}")]
    line = ["python", "-m", "umi_agent.run", "--server", f"http://{host}:{port}/v1", *models]
    line += ["--tokenizer", str(tokenizer)] if tokenizer else []
    return shlex.join(line) + " --tasks TASKS.jsonl --out LIVE_DIR"


def prepare(run: Path, out: Path, host: str = "127.0.0.1", port: int = 8000, merged: bool = True) -> dict[str, Any]:
    """Write the models and serve.json for `run` under `out`; the record (launch lines included)."""
    run, out = run.resolve(), out.resolve()
    plan = role_plan(run)
    record = read_json(run / "glpft.json") or {}
    config = record["config"]
    source = {"run": str(run), "variant": record["variant"], "compat": config.get("compat"),
              "prompt_format": config.get("prompt_format", "alpha-umi"), "tool_docs": config.get("tool_docs", "full")}
    with claim_out_dir(out, SERVE_OUTPUT, extra_owns=[entry["part"] for entry in plan.values()]):  # policy + lock
        return _write_serving(run, out, plan, config, source, host, port, merged)


def _write_serving(run: Path, out: Path, plan: dict[str, dict[str, Any]], config: dict[str, Any], source: dict[str, Any],
                   host: str, port: int, merged: bool) -> dict[str, Any]:
    same_ids = write_tokenizer(run, next(iter(plan)), out / TOKENIZER, {"kind": "umi-served-tokenizer", **source})
    merged_dirs = {role: out / entry["part"] for role, entry in plan.items()}
    if merged:
        for role, target in merged_dirs.items():
            write_role_model(run, role, target, {"kind": "umi-served-model", **source, "part": plan[role]["part"],
                                                  "base": plan[role]["base"], "adapter": plan[role]["adapter"]})
    commands = {"vllm": vllm_lines(plan, config["lora_r"], out / TOKENIZER, host, port)}
    if merged:
        commands["transformers"] = transformers_lines(plan, merged_dirs, host, port)
    serving = {"kind": "umi-serving", **source, "lora_rank": config["lora_r"], "prompt_ids_as_trained": same_ids, "roles": plan,
               "merged": {role: str(path) for role, path in merged_dirs.items()} if merged else None, "commands": commands}
    write_json(out / SERVE_FILE, serving)
    return serving


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=PROG, description="Serve a GLPFT run's agent with a real server.\n\n" + __doc__.split("\n\n", 1)[1])
    parser.add_argument("run", type=Path, metavar="RUN", help="a finished `umi-train glpft` run directory")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write the merged models and serve.json (default: RUN/serve)")
    parser.add_argument("--host", default="127.0.0.1", metavar="NAME", help="address the printed servers listen on")
    parser.add_argument("--port", type=int, default=8000, metavar="N", help="port of the printed servers")
    parser.add_argument("--no-merged", dest="merged", action="store_false",
                        help="skip the merged models (vLLM needs only the adapters; transformers serve needs them)")
    args = parser.parse_args(argv)
    try:
        serving = prepare(args.run, args.out or args.run / "serve", args.host, args.port, args.merged)
    except (ServeError, FileNotFoundError, OutDirError) as exc:
        return fail(PROG, exc)
    titles = {"vllm": "vLLM multi-LoRA: the base model once, the role adapters on it",
              "transformers": "transformers serve: the merged role models (a request names one by its absolute path)"}
    if not serving["prompt_ids_as_trained"]:
        print("# warning: this tokenizer's own special tokens are not the BOS that training puts before a prompt, so a "
              "server that tokenizes the prompt text sees other ids than the local backend")
    for name, lines in serving["commands"].items():
        print(f"# {titles[name]}\n" + "\n".join(lines) + "\n")
    print(f"# written: {(args.out or args.run / 'serve').resolve() / SERVE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
