"""The judge protocol of `umi_agent.passrate` against a real OpenAI-compatible server: `transformers
serve` on loopback with the tiny model (a chat template added to a copy of it). The request and
response path runs for real; the tiny model writes nonsense, no tool call and no JSON, which is
retried as ToolEval does and then counted as a judge error in one line, never a traceback."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from umi_agent.passrate.__main__ import main
from umi_train.testing import sample_corpus, single_thread, tiny_model, transformers_server

MISSING = next((m for m in ("openai", "fastapi", "uvicorn") if importlib.util.find_spec(m) is None), None)
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"needs the serving extra (pip install -e '.[serve]'): {MISSING} is not installed")
TEMPLATE = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}assistant:"


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    root = tmp_path_factory.mktemp("tiny-judge")
    model = tiny_model(root / "tiny", sample_corpus(root / "corpus"))
    served = root / "judge"
    shutil.copytree(model, served)
    (served / "chat_template.jinja").write_text(TEMPLATE)
    return served


def converted(path: Path) -> Path:
    """One answered query and one given up: the judge is asked about the first only."""
    def answer(final: str) -> dict:
        finish = {"name": "Finish", "arguments": final, "response": ""}
        chain = [{"role": "system", "message": "", "next": [{"role": "user", "message": "", "next": [{"role": "tool", "message": finish, "next": []}]}]}]
        return {"query": "What is the capital of France?", "available_tools": [{"name": "Finish"}],
                "answer": {"method": "CoT@1", "total_steps": 3, "final_answer": final, "answer_details": chain}}
    path.write_text(json.dumps({"1": answer('{"return_type": "give_answer", "final_answer": "Paris"}'),
                                "2": answer('{"return_type": "give_up_and_restart"}')}))
    return path


def test_tiny_judge_through_transformers_serve(judge_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = converted(tmp_path / "G1_instruction.json")
    with transformers_server(tmp_path / "serve.log") as url:
        code = main([str(inputs), "--out", str(tmp_path / "out"), "--judge-url", url, "--judge-model", str(judge_model),
                     "--evaluate-times", "1", "--judge-retries", "2", "--judge-retry-wait", "0", "--judge-budget", "0", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "1 verdicts missing" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["judge"]["counts"] == {"garbage_replies": 2, "judge_requests": 2}  # served, answered, unusable
    result = summary["groups"]["G1_instruction"][tmp_path.name]
    assert (result["judge_errors"], result["rules"], result["give_up_share"]) == (1, {"give_up": 1}, 0.5)
    assert "POST /v1/chat/completions HTTP/1.1\" 200" in (tmp_path / "serve.log").read_text()
