"""A real OpenAI-compatible judge on loopback that replays recorded ToolEval verdicts.

`POST /v1/chat/completions` with a forced function call (`tools` + `tool_choice`) is answered
with a tool call whose arguments are the recorded label: `check_answer_status` /
`parse_answer_status` get the query's next recorded `is_solved` round (from StableToolBench's
pass_rate_results), `select_better_answer` the index of the answer whose final answer is the
next recorded preferred one. Every request body is kept (`requests`) so tests can check what the
client sent. `mode` makes it misbehave: "garbage" (text, no tool call), "refuse-tools" (HTTP 422
while `tools` is sent, JSON in the text otherwise), "too-long" (HTTP 400, OpenAI's context-length error),
"text-json" (the arguments as JSON in the text, no tool call, though `tools` were sent)."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Replay:
    def __init__(self, labels: dict[str, list[str]], preferences: dict[str, list[str]] | None = None, mode: str = "replay") -> None:
        self.labels, self.preferences, self.mode = labels, preferences or {}, mode
        self.requests: list[dict] = []
        self.asked: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.lock = threading.Lock()

    def arguments(self, function: str, text: str) -> dict:
        query = re.search(r"Query:\n(.*?)\n\n?Answer", text, re.DOTALL).group(1)
        with self.lock:
            turn = self.asked[(function, query)]
            self.asked[(function, query)] += 1
        if function == "select_better_answer":
            wanted = self.preferences[query][turn]
            answer_0 = json.loads(re.search(r"Answer_0:\n(.*?)\n\nAnswer_1:\n", text, re.DOTALL).group(1))
            return {"index": 0 if answer_0["final_answer"] == wanted else 1, "reason": "replayed"}
        labels = self.labels[query]
        return {"answer_status": labels[turn % len(labels)].split(".")[-1], "reason": "replayed"}

    def reply(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(body)
        text = body["messages"][0]["content"]
        if self.mode == "refuse-tools" and "tools" in body:
            return 422, {"detail": "tools are not supported"}
        if self.mode == "too-long":
            return 400, {"error": {"message": "This model's maximum context length is 8 tokens", "type": "invalid_request_error"}}
        if self.mode == "garbage":
            return 200, completion(body, {"role": "assistant", "content": "the the the answer answer"})
        function = body["tool_choice"]["function"]["name"] if "tool_choice" in body else re.search(r"arguments of `(\w+)`", text).group(1)
        arguments = json.dumps(self.arguments(function, text))
        if "tools" not in body or self.mode == "text-json":
            return 200, completion(body, {"role": "assistant", "content": f"Sure. ```json\n{arguments}\n```"})
        call = {"id": f"call_{len(self.requests)}", "type": "function", "function": {"name": function, "arguments": arguments}}
        return 200, completion(body, {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def completion(body: dict, message: dict, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-replay", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


@contextmanager
def replay_server(replay: Replay) -> Iterator[str]:
    """The server on a free 127.0.0.1 port; yields its base URL (`.../v1`)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            if self.path != "/v1/chat/completions" or length > 10_000_000:
                status, payload = 404, {"detail": "not found"}
            else:
                status, payload = replay.reply(json.loads(self.rfile.read(length)))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
