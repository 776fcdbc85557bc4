"""`python -m umi_agent.toolserver --cache DIR`: StableToolBench's `/virtual` server, replaying a cache.

    python -m umi_agent.toolserver --cache tool-cache/ [--port 8080] [--host 127.0.0.1]
        [--on-miss error|nearest|simulate] [--simulator-url URL --simulator-model M --overlay DIR]

Point StableToolBench's or ToolBench's inference at it with
`SERVICE_URL=http://127.0.0.1:8080/virtual`. Routes: `POST /virtual` (the contract, virtual.py),
`GET /stats` (requests by outcome, misses per api), `GET /health`.

The transport is a small HTTP/1.1 server on asyncio (keep-alive, Content-Length bodies,
`Expect: 100-continue`), chosen by measurement over uvicorn (benchmarks/toolserver_throughput.py):
a hit is one indexed SQLite query and the cached bytes written back, so the framework is most of
the cost. It binds 127.0.0.1 unless told otherwise, and bounds what a client can make it hold:
headers 16 KiB, a body 1 MiB, 10 s to send a request, 60 s idle on a kept-alive connection,
512 connections. A request it cannot read gets a status and a one-line JSON reason, never a
traceback; names in requests are only ever looked up in the index, never joined into a path.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from umi_agent.virtual import ON_MISS, Reply, VirtualAPI, _dumps

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
REQUEST_SECONDS = 10.0
IDLE_SECONDS = 60.0
MAX_CONNECTIONS = 512
DEFAULT_PORT = 8080


@functools.lru_cache(maxsize=64)
def _head(status: int, keep_alive: bool) -> bytes:
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"connection: {'keep-alive' if keep_alive else 'close'}\r\ncontent-length: ").encode("ascii")


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    return b"%s%d\r\n\r\n%s" % (_head(status, keep_alive), len(body), body)


def _error_body(message: str) -> bytes:
    return _dumps({"error": message, "response": ""})


class _Request:
    __slots__ = ("method", "path", "keep_alive", "length", "expect_continue")

    def __init__(self, method: str, path: str, keep_alive: bool, length: int, expect_continue: bool) -> None:
        self.method, self.path, self.keep_alive, self.length, self.expect_continue = method, path, keep_alive, length, expect_continue


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> _Request:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400, "malformed request line") from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, f"unsupported protocol {version[:20]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(411, "send the body with a Content-Length (chunked bodies are not accepted)")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "Content-Length is not a number") from None
    if length < 0:
        raise _BadRequest(400, "negative Content-Length")
    if length > MAX_BODY_BYTES:
        raise _BadRequest(413, f"body larger than {MAX_BODY_BYTES} bytes")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return _Request(method, target.split("?")[0], keep_alive, length, headers.get("expect", "").lower() == "100-continue")


class _Connection(asyncio.Protocol):
    def __init__(self, server: "ToolServer") -> None:
        self.server, self.buffer = server, bytearray()
        self.transport: Any = None
        self.request: _Request | None = None
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections.add(self)
        if len(self.server.connections) > MAX_CONNECTIONS:
            transport.write(_response(503, _error_body("too many connections"), False))
            transport.close()
            return
        self._arm(self.server.idle_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.timer:
            self.timer.cancel()

    def _arm(self, seconds: float) -> None:
        if self.timer:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(seconds, self._timeout)

    def _timeout(self) -> None:
        if self.buffer or self.request is not None:
            self.transport.write(_response(408, _error_body(f"request not received within {self.server.request_seconds:g} s"), False))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self.buffer and self.request is None:
            self._arm(self.server.request_seconds)
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while not self.busy and not self.transport.is_closing():
            if self.request is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEADER_BYTES:
                        self._fail(431, f"headers larger than {MAX_HEADER_BYTES} bytes")
                    return
                if end > MAX_HEADER_BYTES:
                    return self._fail(431, f"headers larger than {MAX_HEADER_BYTES} bytes")
                try:
                    self.request = _parse_head(bytes(self.buffer[:end]))
                except _BadRequest as exc:
                    return self._fail(exc.status, str(exc))
                del self.buffer[: end + 4]
                if self.request.expect_continue and len(self.buffer) < self.request.length:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if len(self.buffer) < self.request.length:
                return
            body = bytes(self.buffer[: self.request.length])
            del self.buffer[: self.request.length]
            request, self.request = self.request, None
            self._handle(request, body)
            if self.busy and self.timer:
                self.timer.cancel()
            elif not self.busy:
                self._arm(self.server.request_seconds if self.buffer else self.server.idle_seconds)

    def _fail(self, status: int, message: str) -> None:
        self.transport.write(_response(status, _error_body(message), False))
        self.transport.close()

    def _handle(self, request: _Request, body: bytes) -> None:
        try:
            reply = self.server.route(request.method, request.path, body)
        except Exception as exc:  # a bug in umi must not leave the client hanging or show it a traceback
            print(f"toolserver: internal error on {request.method} {request.path[:100]}: {type(exc).__name__}: {exc}", file=sys.stderr)
            reply = Reply(500, _error_body(f"internal error: {type(exc).__name__}"))
        if reply is None:  # needs the simulator: off the event loop, reading paused meanwhile
            self.busy = True
            self.transport.pause_reading()
            future = asyncio.get_running_loop().run_in_executor(None, self.server.api.respond, json.loads(body))
            future.add_done_callback(lambda f: self._finish(f, request.keep_alive))
            return
        self._send(reply, request.keep_alive)

    def _finish(self, future: asyncio.Future, keep_alive: bool) -> None:
        exc = future.exception()
        reply = Reply(500, _error_body(f"internal error: {type(exc).__name__}")) if exc else future.result()
        self.busy = False
        self._send(reply, keep_alive)
        if not self.transport.is_closing():
            self._arm(self.server.idle_seconds)
            self.transport.resume_reading()
            self._process()

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        self.transport.write(_response(reply.status, reply.body, keep_alive))
        if not keep_alive:
            self.transport.close()


class ToolServer:
    """Routes requests to a `VirtualAPI`; `serve()` runs until cancelled."""

    def __init__(self, api: VirtualAPI, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 request_seconds: float = REQUEST_SECONDS, idle_seconds: float = IDLE_SECONDS) -> None:
        self.api, self.host, self.port = api, host, port
        self.request_seconds, self.idle_seconds = request_seconds, idle_seconds
        self.connections: set[_Connection] = set()

    def route(self, method: str, path: str, body: bytes) -> Reply | None:
        if path == "/virtual":
            if method != "POST":
                return Reply(405, _error_body("use POST /virtual"))
            try:
                request = json.loads(body)
            except (ValueError, RecursionError):
                return Reply(422, _error_body("invalid request: the body is not JSON"))
            return self.api.respond_cached(request)
        if path in ("/stats", "/health") and method == "GET":
            return Reply(200, _dumps(self.api.stats() if path == "/stats" else {"status": "ok"}))
        return Reply(404, _error_body(f"no route {method[:10]} {path[:100]}; use POST /virtual, GET /stats or GET /health"))

    async def serve(self, ready: Any = None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready(self)
        async with server:
            await server.serve_forever()


def _parser() -> argparse.ArgumentParser:
    from umi_data.plumbing.cli import Parser

    parser = Parser(prog="umi-agent toolserver",
                    description="Serve a tool response cache with StableToolBench's POST /virtual contract (cache-only by default).")
    parser.add_argument("--cache", required=True, type=Path, metavar="DIR", help="cache directory written by `python -m umi_data tool-cache`, or StableToolBench's tool_response_cache/ "
                             "as it is (indexed once into DIR.umi-index/ beside it)")
    parser.add_argument("--host", default="127.0.0.1", metavar="NAME", help="address to bind: loopback only unless told otherwise")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N", help="port (0: any free port, printed)")
    parser.add_argument("--on-miss", choices=ON_MISS, default="error",
                        help="error: a miss is an error body saying so; nearest: the closest cached input of the same "
                             "api, flagged; simulate: an OpenAI-compatible model answers, kept in --overlay, flagged")
    parser.add_argument("--simulator-url", metavar="URL", help="base URL of the OpenAI-compatible server (ending in /v1), for --on-miss simulate")
    parser.add_argument("--simulator-model", metavar="NAME", help="model name on that server")
    parser.add_argument("--overlay", type=Path, metavar="DIR", help="cache directory for simulated answers (default: the cache directory's name + .overlay, beside it)")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_SECONDS, metavar="X",
                        help="seconds a client has to send a whole request, once it starts one")
    parser.add_argument("--idle-timeout", type=float, default=IDLE_SECONDS, metavar="X",
                        help="seconds a kept-alive connection may stay idle")
    parser.add_argument("--tools", type=Path, metavar="DIR", help="toolenv/tools ({Category}/{tool}.json) for the simulator's API documentation")
    return parser


def build_api(args: argparse.Namespace) -> VirtualAPI:
    from umi_data.toolcache.build import cache_dir_for

    args.cache = cache_dir_for(args.cache, log=lambda text: print(text, file=sys.stderr, flush=True))
    simulator = None
    if args.on_miss == "simulate":
        from umi_agent.simulate import Simulator

        if not (args.simulator_url and args.simulator_model):
            raise ValueError("--on-miss simulate needs --simulator-url and --simulator-model")
        overlay = args.overlay or args.cache.with_name(args.cache.name + ".overlay")
        simulator = Simulator(args.simulator_url, args.simulator_model, overlay, tools_dir=args.tools)
    return VirtualAPI(args.cache, on_miss=args.on_miss, simulator=simulator)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from umi_data.plumbing.cli import fail
    from umi_data.toolcache.store import CacheError

    try:
        api = build_api(args)
    except (CacheError, ValueError, OSError) as exc:
        return fail("python -m umi_agent.toolserver", exc)
    server = ToolServer(api, args.host, args.port, args.request_timeout, args.idle_timeout)
    announce = lambda s: print(f"serving {args.cache} on http://{s.host}:{s.port}/virtual (on miss: {args.on_miss})", flush=True)  # noqa: E731
    try:
        asyncio.run(server.serve(announce))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        return fail("python -m umi_agent.toolserver", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
