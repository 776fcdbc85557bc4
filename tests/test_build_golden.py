"""The bytes of a synthetic build, pinned: speed work on `build` must not change its output.

The golden (tests/golden/build_sha256.json) is the sha256 of every file a default and a
`--compat alpha-umi` build write from 300 synthetic trajectories, the built-in sample and a few
broken files (so rejects are covered). The plots are left out (their bytes follow the
matplotlib version, not umi); `manifest.json` is pinned without its run-dependent parts.

Regenerate, only when a change of output is intended and explained:

    .venv/bin/python tests/test_build_golden.py --write
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden" / "build_sha256.json"
SAMPLE = resources.files("umi_data") / "samples" / "toolbench" / "answer"
SYNTH_N, SYNTH_SEED = 1200, 7
BROKEN = {"G1_answer/900_bad.json": b'{"answer_generation": {"valid_data": tr', "G1_answer/901_empty.json": b"",
          "G1_answer/902_shape.json": b"[1, 2]"}
MODES: dict[str, dict[str, Any]] = {"default": {}, "compat": {"compat": "alpha-umi"}}


def golden_inputs(work: Path) -> list[str]:
    """The input roots of the golden builds (synthesized into `work` once)."""
    world = work / "world"
    if not (world / "tasks.jsonl").is_file():
        subprocess.run([sys.executable, "-m", "umi_data", "synth", "--n", str(SYNTH_N), "--seed", str(SYNTH_SEED),
                        "--out", str(world)], check=True, stdout=subprocess.DEVNULL)
    broken = work / "broken"
    for name, data in {**BROKEN, **give_up_first_files(world / "answer")}.items():
        (broken / name).parent.mkdir(parents=True, exist_ok=True)
        (broken / name).write_bytes(data)
    return [str(world / "answer"), str(SAMPLE), str(broken)]


def give_up_first_files(answer: Path) -> dict[str, bytes]:
    """Answer files whose first decision is a give-up: in compat mode their backbone example
    reuses the input of the trajectory before (the official stale-input quirk), which is what a
    build split across workers or shards must still reproduce."""
    out = {}
    for index, path in enumerate(sorted(answer.rglob("*.json"))[:3]):
        record = json.loads(path.read_bytes())
        messages = record["answer_generation"]["train_messages"][-1][:2]
        give_up = {"name": "Finish", "arguments": '{\n  "return_type": "give_up_and_restart"\n}'}
        messages.append({"role": "assistant", "content": f"I cannot do this ({index}).", "function_call": give_up})
        record["answer_generation"]["train_messages"] = [messages]
        out[f"G1_answer/{903 + index}_giveup.json"] = json.dumps(record).encode()
    return out


def corpus_hashes(corpus: Path) -> dict[str, Any]:
    """sha256 of each file but the plots and the directory's lock file (umi_data.plumbing.outdir: who owns the
    directory, not corpus data), and the manifest without what names this machine or run."""
    hashes = {p.relative_to(corpus).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(corpus.rglob("*")) if p.is_file() and p.suffix != ".png" and p.name not in ("manifest.json", ".umi-lock")}
    manifest = json.loads((corpus / "manifest.json").read_text())
    files = {k: v for k, v in manifest["files"].items() if not k.endswith(".png")}
    hashes["manifest.json"] = {"counts": manifest["counts"], "examples": manifest["examples"], "files": files}
    return hashes


def build_hashes(work: Path, **build_options: Any) -> dict[str, dict[str, Any]]:
    from umi_data.building.build import BuildConfig, build_corpus

    inputs = golden_inputs(work)
    out = {}
    for mode, options in MODES.items():
        corpus = work / f"corpus-{mode}"
        build_corpus(BuildConfig(source="toolbench", inputs=inputs, **options), corpus, progress=False, **build_options)
        out[mode] = corpus_hashes(corpus)
    return out


def test_build_output_matches_the_golden(tmp_path: Path) -> None:
    expected = json.loads(GOLDEN.read_text())
    actual = build_hashes(tmp_path)
    for mode in MODES:
        for name, digest in expected[mode].items():
            assert actual[mode].get(name) == digest, f"{mode}: {name} differs from the golden (see this module's docstring)"
        assert sorted(actual[mode]) == sorted(expected[mode])


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (rewrites {GOLDEN})")
    with tempfile.TemporaryDirectory() as work:
        GOLDEN.write_text(json.dumps(build_hashes(Path(work)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
