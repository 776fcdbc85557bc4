"""The served backend against a real OpenAI-compatible server: `transformers serve`, started here
on a free localhost port on CPU, serving the tiny GLPFT runs' merged role models written by
`umi_train.serve`. The same prompts, episodes and static predictions through the local backend
and through the server must be identical (the server decodes greedily like the local backend, and
the client sends the very text the local backend encodes, cut to the window the same way)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from umi_agent.backends import PromptFormat, ScriptedModel, TransformersModel
from umi_agent.loop import MultiAgent, run_episode
from umi_agent.predict import main as predict_main
from umi_agent.run import main as run_main
from umi_agent.served import Server, ServedModel, ServerError, parse_model_names
from umi_agent.tools import synthetic_registry
from umi_train.encode import encode_prompt
from umi_train.serve import main as serve_main
from umi_train.serve import prepare
from umi_train.testing import free_port, single_thread, tiny_glpft_runs, transformers_server

MISSING = next((m for m in ("openai", "fastapi", "uvicorn") if importlib.util.find_spec(m) is None), None)
needs_server = pytest.mark.skipif(MISSING is not None, reason=f"needs the serving extra (pip install -e '.[serve]'): {MISSING} is not installed")
ROLES = ("planner", "caller", "summarizer")
TOKENS = 24


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    single_thread()
    found = tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft")  # shared with test_agent_end_to_end
    for variant in ("reuse", "single"):
        prepare(found[variant], found["root"] / f"serve-{variant}")
        found[f"serve-{variant}"] = found["root"] / f"serve-{variant}"
    return found


@pytest.fixture(scope="module")
def server(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    if MISSING is not None:
        pytest.skip(f"needs the serving extra (pip install -e '.[serve]'): {MISSING} is not installed")
    with transformers_server(tmp_path_factory.mktemp("server") / "transformers-serve.log") as url:
        yield url


def role_prompts(corpus: Path, role: str, count: int = 8) -> list[str]:
    from umi_train.data import read_role_rows

    rows = read_role_rows(corpus, role)
    return [row["input"] for row in rows[:: max(len(rows) // count, 1)][:count]]


def served_args(url: str, serve_dir: Path, roles: tuple[str, ...]) -> list[str]:
    return ["--server", url, *(arg for role in roles for arg in ("--model", f"{role}={serve_dir / role}"))]


@needs_server
@pytest.mark.parametrize("variant,role", [("reuse", "planner"), ("reuse", "caller"), ("reuse", "summarizer"), ("single", "backbone")])
def test_served_outputs_equal_local_outputs(runs: dict[str, Path], server: str, variant: str, role: str) -> None:
    """Corpus prompts, half of them longer than a 256-token window: the served batch (4 requests
    in flight) answers exactly what the local model answers one prompt at a time."""
    local = TransformersModel.from_run(runs[variant], role, max_new_tokens=TOKENS, max_input_tokens=256)
    served = ServedModel(Server(server), str(runs[f"serve-{variant}"] / role), role, max_new_tokens=TOKENS,
                         format=PromptFormat(local.tokenizer, None, 256), concurrency=4)
    # the role's own prompts and a few planner prompts: the tiny reuse summarizer ends every in-role
    # answer at once (an empty text), so its comparison needs prompts on which it writes something
    prompts = role_prompts(runs["root"] / "corpus", role) + (role_prompts(runs["root"] / "corpus", "planner", 4) if role != "planner" else [])
    assert sum(len(encode_prompt(p, local.tokenizer)) > 256 - TOKENS for p in prompts) >= 2  # the cut is exercised
    expected = [local.generate(prompt) for prompt in prompts]
    assert any(text.strip() for text in expected)
    assert served.generate_batch(prompts) == expected


@needs_server
@pytest.mark.parametrize("variant,roles", [("reuse", ROLES), ("single", ("backbone",))])
def test_live_episodes_through_the_server_equal_local_ones(runs: dict[str, Path], server: str, variant: str, roles: tuple,
                                                           tmp_path: Path) -> None:
    """`umi_agent.run` with the run and the server side by side (4 episodes at once against the
    server): the same traces byte for byte, the same metrics, episodes in task order."""
    tasks = runs["root"] / "heldout" / "tasks.jsonl"
    assert run_main(["--run", str(runs[variant]), *served_args(server, runs[f"serve-{variant}"], roles), "--concurrency", "4",
                     "--tasks", str(tasks), "--out", str(tmp_path), "--max-steps", "3", "--max-new-tokens", str(TOKENS)]) == 0
    local, served = ((tmp_path / name / "episodes.json").read_bytes() for name in (variant, "served"))
    assert local == served
    ids = [episode["meta"]["task_id"] for episode in json.loads(served)]
    assert ids == [json.loads(line)["id"] for line in tasks.read_text().splitlines()]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    drop = {"run", "corpus", "latency_ms"}
    assert {k: v for k, v in metrics[variant].items() if k not in drop} == {k: v for k, v in metrics["served"].items() if k not in drop}
    assert set(metrics["served"]["latency_ms"]) == set(metrics[variant]["latency_ms"])


@needs_server
def test_caller_and_summarizer_episodes_through_the_server(runs: dict[str, Path], server: str) -> None:
    """A scripted planner that calls twice then concludes, so that the served caller and
    summarizer write the episode's calls and answer: the same trajectories as the local ones."""
    tasks = [json.loads(line) for line in (runs["root"] / "heldout" / "tasks.jsonl").read_text().splitlines()]
    server_ = Server(server)
    local = {role: TransformersModel.from_run(runs["reuse"], role, max_new_tokens=TOKENS) for role in ("caller", "summarizer")}
    served = {role: ServedModel(server_, str(runs["serve-reuse"] / role), role, max_new_tokens=TOKENS,
                                format=PromptFormat(local[role].tokenizer)) for role in local}

    def trajectories(models: dict) -> list[dict]:
        plans = ["I will look it up.\nNext: caller.", "Once more.\nNext: caller.", "I have it.\nNext: conclusion."]
        return [run_episode(MultiAgent(ScriptedModel(plans), models["caller"], models["summarizer"]), task["instruction"],
                            synthetic_registry(task["tools"]), episode_id=task["id"]).trajectory.model_dump() for task in tasks]

    expected = trajectories(local)
    assert [t["turns"][-1]["role"] for t in expected] == ["conclusion"] * len(tasks)
    assert sum(turn["role"] == "caller" for t in expected for turn in t["turns"]) == 2 * len(tasks)
    assert trajectories(served) == expected


@needs_server
@pytest.mark.parametrize("variant,roles", [("reuse", ROLES), ("single", ("backbone",))])
def test_static_predictions_through_the_server_equal_local_ones(runs: dict[str, Path], server: str, variant: str, roles: tuple,
                                                                tmp_path: Path) -> None:
    test = runs["root"] / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    common = ["--test", str(test), "--limit", "6", "--max-new-tokens", str(TOKENS)]
    assert predict_main(["--run", str(runs[variant]), "--out", str(tmp_path / "local.json"), *common]) == 0
    assert predict_main([*served_args(server, runs[f"serve-{variant}"], roles), "--out", str(tmp_path / "served.json"), *common]) == 0
    assert (tmp_path / "local.json").read_bytes() == (tmp_path / "served.json").read_bytes()


@needs_server
def test_unknown_model_and_unreachable_server_are_one_line_errors(runs: dict[str, Path], server: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    tasks = str(runs["root"] / "heldout" / "tasks.jsonl")
    common = ["--tasks", tasks, "--out", str(tmp_path / "live"), "--timeout", "30"]
    assert run_main(["--server", server, "--model", str(tmp_path / "no-such-model"), *common]) == 2
    note, error = capsys.readouterr().err.splitlines()  # the note: no tokenizer to cut prompts with
    assert note.startswith("note: no --tokenizer") and error.startswith("umi-agent run: error: ")
    assert "HTTP 500" in error and "no-such-model" in error
    assert run_main(["--server", f"http://127.0.0.1:{free_port()}/v1", "--model", "x", *common]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("umi-agent run: error: ") and "unreachable" in error
    assert not (tmp_path / "live" / "served").exists()


def test_model_names_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert parse_model_names(["planner=P", "caller=C", "summarizer=S"]) == {"planner": "P", "caller": "C", "summarizer": "S"}
    assert parse_model_names(["/models/single"]) == parse_model_names(["backbone=/models/single"]) == {"backbone": "/models/single"}
    for bad in (["planner=P", "caller=C"], ["planner=P", "planner=Q", "caller=C", "summarizer=S"], ["a", "b"], []):
        with pytest.raises(ServerError):
            parse_model_names(bad)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("")
    assert run_main(["--model", "planner=P", "--tasks", str(tasks), "--out", str(tmp_path / "o")]) == 2
    assert "--server" in capsys.readouterr().err
    assert run_main(["--tasks", str(tasks), "--out", str(tmp_path / "o")]) == 2
    assert "--run RUN" in capsys.readouterr().err


def test_serve_recipe(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The vLLM multi-LoRA line names the run's base model and its three adapters with the run's
    rank; the transformers serve line's models are the merged role models written for it."""
    assert serve_main([str(runs["reuse"]), "--out", str(tmp_path / "serve"), "--port", "8123"]) == 0
    out = capsys.readouterr().out
    vllm = next(line for line in out.splitlines() if line.startswith("vllm serve "))
    adapters = {role: runs["reuse"].resolve() / "stage2" / role / "adapter" for role in ROLES}
    assert vllm.startswith(f"vllm serve {runs['reuse'].resolve() / 'stage1' / 'merged'} ")
    assert "--enable-lora --max-lora-rank 8 --max-loras 3 --lora-modules " + " ".join(f"{r}={p}" for r, p in adapters.items()) in vllm
    assert all(path.is_dir() for path in adapters.values())
    record = json.loads((tmp_path / "serve" / "serve.json").read_text())
    assert record["commands"]["vllm"][0] == vllm and record["compat"] is None and record["prompt_ids_as_trained"] is True
    for role in ROLES:
        merged = tmp_path / "serve" / role
        assert (merged / "config.json").is_file() and json.loads((merged / "umi_model.json").read_text())["adapter"] == str(adapters[role])
        assert f"--model {role}={merged}" in out
    before = (tmp_path / "serve" / "planner" / "model.safetensors").stat().st_mtime_ns
    assert serve_main([str(runs["reuse"]), "--out", str(tmp_path / "serve")]) == 0
    assert (tmp_path / "serve" / "planner" / "model.safetensors").stat().st_mtime_ns == before  # a rerun reuses them
    assert serve_main([str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "glpft.json" in capsys.readouterr().err
    mine = tmp_path / "mine"  # a directory serve did not write: refused, never rmtree'd (docs/guarantees.md)
    (mine / "planner").mkdir(parents=True)
    (mine / "planner" / "notes.txt").write_text("keep")
    assert serve_main([str(runs["reuse"]), "--out", str(mine)]) == 2
    assert "not written by `umi-train serve`" in capsys.readouterr().err
    assert (mine / "planner" / "notes.txt").read_text() == "keep" and sorted(p.name for p in mine.iterdir()) == ["planner"]


@needs_server
def test_throughput_benchmark_reports_a_ratio(runs: dict[str, Path], server: str, capsys: pytest.CaptureFixture) -> None:
    """benchmarks/agent_throughput.py on the running server: four configurations, the same
    episodes in each (it exits otherwise), last line `ratio: X.XX`. The figures are its full run's."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "agent_throughput.py"
    spec = importlib.util.spec_from_file_location("agent_throughput", script)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    tasks = runs["root"] / "heldout" / "tasks.jsonl"
    assert benchmark.main(["--run", str(runs["reuse"]), "--tasks", str(tasks), "--server", server, "--rounds", "1",
                           "--max-steps", "2", "--max-new-tokens", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "identical episodes in every configuration" in lines[0]
    assert [line.split("  ")[0] for line in lines[2:6]] == ["local, concurrency 1", "local, concurrency 4",
                                                           "server, concurrency 1", "server, concurrency 4"]
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1])
