"""A long-lived bridge between a Lambda function (Node.js, or anything that can spawn a process)
and litellm: JSON requests in on stdin, JSON responses out on stdout, one object per line.

Run: /opt/python/bin/python3.11 -m litellm_bridge

Requests:   {"id": "1", "method": "completion", "params": {...litellm.completion kwargs...}}
            {"id": "2", "method": "completion", "params": {..., "stream": true}}
            {"id": "3", "method": "ping"}
Responses:  {"id": "1", "ok": true, "result": {...the ModelResponse as JSON...}}
            {"id": "2", "chunk": {...}}  (one per streamed chunk), then
            {"id": "2", "ok": true, "done": true}
            {"id": "3", "ok": true, "result": {"pid": 123, "litellm": "1.78.7"}}
Errors:     {"id": "1", "ok": false, "error": {"type": "RateLimitError", "status_code": 429,
            "message": "...", "llm_provider": "openai", "model": "gpt-4o"}}

On start it writes {"ready": true, ...} once litellm is imported. Requests run concurrently (one
asyncio task each, through litellm.acompletion), so a warm Lambda reuses one process for many
calls. Everything else (litellm's own prints, logging) goes to stderr: stdout carries only the
protocol. The bridge exits when stdin closes, after finishing the requests it has.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from importlib.metadata import version
from typing import Any, TextIO


class ProtocolError(ValueError):
    """A request the bridge cannot read."""


class Bridge:
    def __init__(self, protocol: TextIO) -> None:
        self.protocol = protocol
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), default=str)
        with self.lock:
            self.protocol.write(line + "\n")
            self.protocol.flush()

    async def completion(self, request_id: object, params: dict[str, Any]) -> None:
        import litellm

        response = await litellm.acompletion(**params)
        if params.get("stream"):
            async for chunk in response:
                self.send({"id": request_id, "chunk": _dump(chunk)})
            self.send({"id": request_id, "ok": True, "done": True})
        else:
            self.send({"id": request_id, "ok": True, "result": _dump(response)})

    async def dispatch(self, request: object) -> None:
        if not isinstance(request, dict):
            raise ProtocolError("a request is a JSON object")
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params") or {}
        if method == "completion":
            await self.completion(request_id, params)
        elif method == "ping":
            self.send(
                {
                    "id": request_id,
                    "ok": True,
                    "result": {"pid": os.getpid(), "litellm": version("litellm")},
                }
            )
        else:
            raise ProtocolError(f"unknown method {method!r}")

    async def handle(self, line: bytes) -> None:
        request: object = None
        try:
            request = json.loads(line)
            await self.dispatch(request)
        except Exception as err:  # noqa: BLE001 - every failure becomes a structured reply
            request_id = request.get("id") if isinstance(request, dict) else None
            print(f"litellm_bridge: request {request_id!r} failed: {err!r}", file=sys.stderr)
            self.send({"id": request_id, "ok": False, "error": _error(err)})

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self.send({"ready": True, "pid": os.getpid(), "litellm": version("litellm")})
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            if line.strip():
                task = asyncio.create_task(self.handle(line))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)


def _error(err: BaseException) -> dict[str, Any]:
    return {
        "type": type(err).__name__,
        "status_code": getattr(err, "status_code", None),
        "message": str(getattr(err, "message", None) or err),
        "llm_provider": getattr(err, "llm_provider", None),
        "model": getattr(err, "model", None),
    }


def _dump(obj: Any) -> Any:
    return obj.model_dump() if hasattr(obj, "model_dump") else obj


def run() -> None:
    """Take stdout for the protocol (anything printed by libraries goes to stderr), import
    litellm (before "ready", so the first request does not pay for it), then serve."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    import litellm  # noqa: F401

    asyncio.run(Bridge(protocol).serve())


if __name__ == "__main__":
    run()
