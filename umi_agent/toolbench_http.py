"""The one stdlib HTTP client of a `/virtual` server: StableToolBench's, or `python -m umi_agent.toolserver`.

Stdlib only (`http.client`): one keep-alive connection per thread, reopened once when the
server closed an idle one (uvicorn closes keep-alive connections idle for 5 s). What
ToolBench's environment turns into an observation stays an observation: a timeout is
`{"error": "Timeout error...", "response": ""}` (code 5), an HTTP status other than 200 or a
body that is not JSON is `request invalid, data error...` (code 12). A server that cannot be
reached at all is not the model's mistake: `ToolServerError`, one line.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 60.0


class ToolServerError(RuntimeError):
    """The tool server cannot be reached (a one-line message)."""


class HttpBackend:
    """`Backend` posting `/virtual` request bodies to `url` (thread-safe)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolServerError(f"--service-url {url}: expected http://HOST:PORT/virtual")
        self.url, self.timeout = url, timeout
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = (parts.path or "/virtual") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def _post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        for attempt in (0, 1):  # a keep-alive connection the server closed: one fresh try
            connection = self._connection(fresh=attempt == 1)
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(request).encode()
        try:
            status, payload = self._post(body)
        except (socket.timeout, TimeoutError):
            self._connection(fresh=True)
            return {"error": "Timeout error...", "response": ""}
        except (OSError, http.client.HTTPException) as exc:
            self._local.connection = None
            raise ToolServerError(f"{self.url}: unreachable ({exc}); is the tool server running?") from None
        if status != 200:
            return {"error": f"request invalid, data error. status_code={status}", "response": ""}
        try:
            answer = json.loads(payload)
        except ValueError:
            return {"error": "request invalid, data error", "response": ""}
        return answer if isinstance(answer, dict) else {"error": "request invalid, data error", "response": ""}

    def is_umi_server(self) -> bool:
        """Whether the server is umi's toolserver (its `GET /stats` answers), so that a miss is marked;
        asked once before a run, so a server that is not there is one line before any episode."""
        kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=min(self.timeout, 10.0))
        try:
            connection.request("GET", "/stats")
            response = connection.getresponse()
            stats = json.loads(response.read()) if response.status == 200 else None
        except (socket.timeout, TimeoutError, http.client.HTTPException, ValueError):
            return False
        except OSError as exc:
            raise ToolServerError(f"{self.url}: unreachable ({exc}); is the tool server running?") from None
        finally:
            connection.close()
        return isinstance(stats, dict) and "misses_per_api" in stats


__all__ = ["DEFAULT_TIMEOUT", "HttpBackend", "ToolServerError"]
