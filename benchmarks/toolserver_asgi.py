"""The same `VirtualAPI` as a bare ASGI app, so the benchmark can measure it under uvicorn
(`--stacks umi,uvicorn`): the transport measurement behind umi's own asyncio server.
The cache directory comes from the environment variable UMI_TOOL_CACHE."""

from __future__ import annotations

import json
import os

from umi_agent.virtual import VirtualAPI

API = VirtualAPI(os.environ.get("UMI_TOOL_CACHE", "cache"))


async def app(scope, receive, send) -> None:  # noqa: ANN001 (the ASGI signature)
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        reply = API.respond(json.loads(body))
        status, payload = reply.status, reply.body
    except ValueError:
        status, payload = 422, b'{"error":"invalid request: the body is not JSON","response":""}'
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"),
                                                                        (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
