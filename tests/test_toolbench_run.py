"""`python -m umi_agent.run --toolbench-queries FILE --service-url URL`: usage errors in one line,
and tiny GLPFT runs (α-UMi and Single-LLM) playing ToolBench queries against a real loopback
`/virtual` server with CoT and DFSDT, writing episodes, corpora and answer files that umi's
builder reads back with zero rejects (umi's own `valid_data: false` files included)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from umi_agent.run import main as run_main
from umi_train.testing import single_thread, tiny_glpft_runs

API = {"category_name": "Weather", "tool_name": "Open Weather", "api_description": "Weather of a city", "method": "GET",
       "required_parameters": [{"name": "city", "type": "STRING", "description": "a city", "default": "Paris"}],
       "optional_parameters": []}
QUERIES = [
    {"query_id": 11, "query": "What is the weather in Paris?", "api_list": [{**API, "api_name": "Current"}, {**API, "api_name": "Forecast"}]},
    {"query_id": 12, "query": "Will it rain in Rome tomorrow?", "api_list": [{**API, "api_name": "Forecast"}]},
    {"query_id": 13, "query": "An open-domain query without tools"},
]


class _Virtual(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Virtual.requests.append(body)
        payload = json.dumps({"error": "", "response": f"{body['api_name']}: sunny"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Virtual)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/virtual"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def queries(tmp_path: Path) -> Path:
    path = tmp_path / "G1_instruction.json"
    path.write_text(json.dumps(QUERIES))
    return path


@pytest.mark.parametrize(("extra", "message"), [
    ([], "exactly one tool backend: --cache DIR (in process) or --service-url URL"),
    (["--cache", "c", "--service-url", "http://127.0.0.1:9/virtual"], "exactly one tool backend"),
    (["--service-url", "http://127.0.0.1:9/virtual", "--on-miss", "nearest"], "--on-miss is the tool server's option"),
    (["--cache", "no-such-cache"], "not a tool cache"),
    (["--service-url", "http://127.0.0.1:9/virtual"], "unreachable"),
    (["--tasks", "tasks.jsonl"], "give one of them"),
    (["--service-url", "ftp://x"], "expected http://HOST:PORT/virtual"),
])
def test_usage_errors_are_one_line(queries: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str) -> None:
    code = run_main(["--toolbench-queries", str(queries), "--out", str(tmp_path / "o"), "--server", "http://127.0.0.1:9/v1",
                     "--model", "m", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_missing_or_bad_query_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_main(["--toolbench-queries", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "bad.json").write_text("{")
    assert run_main(["--toolbench-queries", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    assert run_main(["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "no such query file" in err[0] and "not JSON" in err[1] and "--toolbench-queries" in err[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    single_thread()
    return tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft")  # shared with the other agent tests


@pytest.mark.parametrize("search", ["cot", "dfsdt"])
def test_tiny_runs_play_toolbench_queries(runs: dict[str, Path], service: str, queries: Path, tmp_path: Path, search: str) -> None:
    from umi_data.building.build import BuildConfig, build_corpus

    out = tmp_path / "live"
    _Virtual.requests.clear()
    assert run_main(["--run", str(runs["reuse"]), "--run", str(runs["single"]), "--toolbench-queries", str(queries),
                     "--service-url", service, "--search", search, "--max-queries", "4", "--max-steps", "2",
                     "--max-new-tokens", "16", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"reuse", "single"} and all(m["episodes"] == 2 and m["rejected_queries"] == 1 for m in metrics.values())
    assert json.loads((out / "query_rejects.jsonl").read_text())["reason"] == "no_api_list"
    method = "DFS_woFilter_w2" if search == "dfsdt" else "CoT@1"
    for name in ("reuse", "single"):
        answers = out / name / "answer" / "G1_instruction"
        files = sorted(p.name for p in answers.iterdir())
        assert files == [f"11_{method}.json", f"12_{method}.json"]
        episodes = json.loads((out / name / "episodes.json").read_text())
        assert [e["meta"]["query_id"] for e in episodes] == ["11", "12"]
        written = [json.loads((answers / f).read_text()) for f in files]
        assert [a["umi"]["episode_id"] for a in written] == ["G1_instruction/11", "G1_instruction/12"]
        assert all(a["umi"]["method"] == method and "tool_cache" not in a for a in written)  # a foreign server: unknown
        built = build_corpus(BuildConfig(source="toolbench", inputs=[str(answers)]), tmp_path / f"corpus-{name}", progress=False)
        counts = built.manifest["counts"]
        assert counts["accepted"] == 2 and counts["rejected"] == 0  # umi's own files, valid_data false or not
    assert all(m["cache_hit_rate"] is None and m["tool_cache"].startswith("unknown") for m in metrics.values())
    assert sum(m["tool_requests"] for m in metrics.values()) == len(_Virtual.requests)
    assert all(r["tool_name"] == "open_weather" and r["category"] == "Weather" for r in _Virtual.requests)
