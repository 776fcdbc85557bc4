"""The replay server over real HTTP on loopback: the 15 ToolBench answer files replayed byte for
byte as ToolBench's client sees them, /stats, and a fuzz of malformed requests."""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from umi_agent.toolbench_http import HttpBackend
from umi_data.toolcache.build import build_tool_cache
from umi_data.toolcache.catalog import split_function

REPO = Path(__file__).resolve().parents[1]
#: ToolBench's client keeps this many characters of `json.dumps(response)`, then adds "..." (README: 1024).
OBSERVATION_CHARS = 1024


class Server:
    def __init__(self, cache: Path, *extra: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "umi_agent.toolserver", "--cache", str(cache), "--port", "0", *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        line = self.process.stdout.readline()
        assert "serving" in line, line + self.process.stderr.read()
        self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        return err


def post(conn: http.client.HTTPConnection, body: bytes | dict, path: str = "/virtual") -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, {"content-type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def recorded_calls(answer_dir: Path) -> Iterator[tuple[dict, str]]:
    """(the /virtual request ToolBench's client sends, the observation it recorded) for each call
    of each file's final chain."""
    for file in sorted(answer_dir.rglob("*.json")):
        generation = json.loads(file.read_text())["answer_generation"]
        if not generation.get("train_messages"):
            continue
        descriptions = {f["name"]: f.get("description", "") for f in generation["function"]}
        chain = generation["train_messages"][-1]
        for message, reply in zip(chain, chain[1:]):
            call = message.get("function_call")
            # ToolBench's environment calls the first function whose name ends with the called name
            matches = [name for name in descriptions if call and name.endswith(call["name"])]
            if call and call["name"] != "Finish" and reply["role"] == "function" and matches:
                tool, api = split_function(matches[0], descriptions[matches[0]])
                request = {"category": "Data", "tool_name": tool, "api_name": api, "tool_input": call["arguments"],
                           "strip": "truncate", "toolbench_key": "EMPTY"}
                yield request, reply["content"]


def as_toolbench_observation(body: bytes) -> str:
    text = json.dumps(json.loads(body))
    return text[:OBSERVATION_CHARS] + "..." if len(text) > OBSERVATION_CHARS else text


def test_answer_files_replay_byte_for_byte(toolbench_answer: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, "-m", "umi_data", "build", "toolbench", str(toolbench_answer), "--out", str(corpus), "--quiet"],
                   check=True, capture_output=True, cwd=REPO)
    build_tool_cache([corpus], tmp_path / "cache")
    calls = list(recorded_calls(toolbench_answer))
    assert len(calls) == 37
    server = Server(tmp_path / "cache")
    try:
        conn = server.connection()  # one kept-alive connection for every call
        for request, recorded in calls:
            status, body = post(conn, request)
            assert status == 200 and as_toolbench_observation(body) == recorded, request
        conn.request("GET", "/stats")
        stats = json.loads(conn.getresponse().read())
        # the same through the agent's HTTP backend (the Callable[[dict], dict] VirtualAPI also is)
        backend = HttpBackend(f"http://127.0.0.1:{server.port}/virtual")
        assert all(as_toolbench_observation(json.dumps(backend(request)).encode()) == recorded for request, recorded in calls[:5])
        assert backend({"category": 1})["error"] == "request invalid, data error. status_code=422"
    finally:
        assert "Traceback" not in server.stop()
    assert stats["counts"] == {"hit_exact": 37} and stats["hit_rate"] == 1.0 and stats["misses_per_api"] == {}


@pytest.fixture()
def small_cache(tmp_path: Path) -> Path:
    path = tmp_path / "tool_response_cache" / "Weather" / "open_weather_for_Weather" / "current.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"{'city': 'Paris'}": {"error": "", "response": "sunny"}}))
    build_tool_cache([tmp_path / "tool_response_cache"], tmp_path / "cache")
    return tmp_path / "cache"


def fuzz_bodies(rng: random.Random) -> Iterator[bytes | dict]:
    good = {"category": "Weather", "tool_name": "open_weather", "api_name": "current", "tool_input": '{"city": "Paris"}', "strip": "", "toolbench_key": ""}
    values = [None, 1, 1.5, True, [], ["x"], {}, {"a": {"b": []}}, "", "x" * 300_000, "../../etc/passwd", "/etc/passwd",
              "..", "\x00", "é" * 50, "{" * 5000, '{"a": ' * 3000, "NaN", '{"x": NaN}', "Weather/../../..", "C:\\Windows"]
    for field in good:
        for value in values:
            yield {**good, field: value}
        yield {k: v for k, v in good.items() if k != field}
    for _ in range(200):
        yield {k: rng.choice(values) for k in good if rng.random() < 0.8}
    yield from [b"", b"not json", b"[1, 2", b"\xff\xfe", b"[]", b"null", b"1e999", b"[" * 100_000, json.dumps(good).encode()[:-1]]


def test_fuzzed_requests_never_break_the_server(small_cache: Path) -> None:
    server = Server(small_cache)
    statuses = set()
    try:
        conn = server.connection()
        for body in fuzz_bodies(random.Random(0)):
            status, reply = post(conn, body)
            statuses.add(status)
            document = json.loads(reply)
            assert set(document) >= {"error", "response"} and isinstance(document["error"], str)
            assert status in (200, 422)
        # path-like names are misses, never reads
        status, reply = post(conn, {"category": "../../..", "tool_name": "etc", "api_name": "passwd", "tool_input": "{}", "strip": "", "toolbench_key": ""})
        assert json.loads(reply)["error"].startswith("umi replay cache miss")
        assert post(conn, {"x": 1}, "/nowhere")[0] == 404
        conn.request("GET", "/virtual")
        assert conn.getresponse().status == 405
        conn.close()
        for head, status in [(b"POST /virtual HTTP/1.1\r\ncontent-length: 2097152\r\n\r\n", b"413"),  # bounded body
                             (b"GARBAGE\r\n\r\n", b"400"), (b"GET / HTTP/2.0\r\n\r\n", b"505"),
                             (b"POST /virtual HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", b"411"),
                             (b"GET /stats HTTP/1.1\r\nx: " + b"y" * 20_000, b"431")]:
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            raw.sendall(head)
            assert raw.recv(100).startswith(b"HTTP/1.1 " + status), head[:40]
            raw.close()
        status, reply = post(server.connection(), {"category": "Weather", "tool_name": "open_weather", "api_name": "current",
                                                   "tool_input": {"city": "Paris"}, "strip": "", "toolbench_key": ""})
        assert (status, json.loads(reply)) == (200, {"error": "", "response": "sunny"})  # still serving
    finally:
        err = server.stop()
    assert "Traceback" not in err and err == "", err
    assert statuses == {200, 422}


def test_binds_loopback_by_default(small_cache: Path) -> None:
    server = Server(small_cache)
    try:
        addresses = {ip for ip in socket.gethostbyname_ex(socket.gethostname())[2] if not ip.startswith("127.")}
        for ip in addresses:
            with pytest.raises(OSError):
                socket.create_connection((ip, server.port), timeout=2).close()
    finally:
        server.stop()


def test_serves_a_stabletoolbench_cache_given_as_it_is(tmp_path: Path) -> None:
    layout = tmp_path / "tool_response_cache"
    (layout / "Data" / "q_for_Data").mkdir(parents=True)
    (layout / "Data" / "q_for_Data" / "get_x.json").write_text(json.dumps({"{'a': 1}": {"error": "", "response": "one"}}, indent=4))
    server = Server(layout)
    try:
        status, reply = post(server.connection(), {"category": "Data", "tool_name": "q", "api_name": "get x", "tool_input": '{"a": 1}',
                                                   "strip": "", "toolbench_key": ""})
    finally:
        err = server.stop()
    assert (status, json.loads(reply)) == (200, {"error": "", "response": "one"})
    assert (tmp_path / "tool_response_cache.umi-index" / "cache.sqlite").is_file() and "indexing" in err


def test_slow_and_idle_clients_are_cut_off(small_cache: Path) -> None:
    server = Server(small_cache, "--request-timeout", "1", "--idle-timeout", "2")
    try:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"POST /virtual HTTP/1.1\r\ncontent-length: 100\r\n\r\n{")  # and then nothing
        assert slow.recv(100).startswith(b"HTTP/1.1 408")
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert idle.recv(100) == b""  # closed after the idle timeout, nothing sent
    finally:
        assert "Traceback" not in server.stop()


def test_a_failing_simulator_is_reported_never_cached(small_cache: Path, tmp_path: Path) -> None:
    """--on-miss simulate against a server that is not there: a flagged failure, nothing stored."""
    import socket as socket_module

    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    server = Server(small_cache, "--on-miss", "simulate", "--simulator-url", f"http://127.0.0.1:{closed_port}/v1",
                    "--simulator-model", "m", "--overlay", str(tmp_path / "overlay"))
    try:
        conn = server.connection()
        status, reply = post(conn, {"category": "Weather", "tool_name": "open_weather", "api_name": "current", "tool_input": '{"city": "Rome"}'})
        document = json.loads(reply)
        assert status == 200 and document["error"].startswith("simulation failed") and document["umi"] == {"match": "simulated"}
        assert json.loads(post(conn, {"category": "Weather", "tool_name": "open_weather", "api_name": "current",
                                      "tool_input": '{"city": "Paris"}'})[1]) == {"error": "", "response": "sunny"}
    finally:
        assert "Traceback" not in server.stop()
    from umi_data.toolcache.store import CacheStore

    assert list(CacheStore(tmp_path / "overlay").rows()) == []
