"""A long-lived bridge between a Lambda function (Node.js, or anything that can spawn a process)
and litellm: JSON requests in on stdin, JSON replies out on stdout, one object per line.

Run: /opt/python/bin/python3.11 -m litellm_bridge

Requests:   {"id": "1", "method": "completion", "params": {...litellm.acompletion kwargs...}}
            {"id": "2", "method": "completion", "params": {..., "stream": true}, "window": 16}
            {"id": "3", "method": "ping"}
Control:    {"id": "2", "method": "credit", "chunks": 8}   the client took 8 more chunks
            {"id": "1", "method": "cancel"}                stop request 1 (no reply owed)
Replies:    {"id": "1", "ok": true, "result": {...the ModelResponse as JSON...}}
            {"id": "2", "chunk": {...}}  (one per streamed chunk), then
            {"id": "2", "ok": true, "done": true}
            {"id": "3", "ok": true, "result": {"pid": 123, "litellm": "1.78.7", "protocol": 2}}
Errors:     {"id": "1", "ok": false, "error": {"kind": "rate_limit", "type": "RateLimitError",
            "status": 429, "code": null, "message": "...", "provider": "openai", "model": "gpt-4o",
            "headers": {...}}}

On start it writes {"ready": true, "protocol": 2, ...} once litellm is imported. Requests run
concurrently, one asyncio task each, so a warm Lambda reuses one process for many calls.

- Cancellation: "cancel" cancels the request's task, which closes its connection to the provider.
- Backpressure: a stream may have at most `window` chunks sent and not yet credited; past that
  the bridge stops reading from the provider until the client sends credit.
- Size limits (PYBUILD_BRIDGE_MAX_REQUEST_BYTES, PYBUILD_BRIDGE_MAX_RESPONSE_BYTES, 32 MiB each):
  a longer request line is skipped and fails only its own request (its id is read from the line's
  first bytes: clients write "id" first, as this bridge does); a longer reply becomes an error.
- Exit: when stdin closes, the bridge cancels what is still running and exits at once, without
  waiting for litellm's background logging (which would keep the process alive).

Everything else (litellm's own prints, logging) goes to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, BinaryIO

PROTOCOL = 2
DEFAULT_WINDOW = 16
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
READ_SIZE = 64 * 1024
EXIT_GRACE_SECONDS = 2.0

# litellm's exceptions subclass the openai SDK's; read by class name along the MRO, most specific
# first, so that ContextWindowExceededError is a bad request and litellm.Timeout a timeout.
KIND_BY_CLASS = {
    "Timeout": "timeout",  # litellm.Timeout (a subclass of openai.APIConnectionError)
    "APITimeoutError": "timeout",
    "TimeoutException": "timeout",  # httpx
    "TimeoutError": "timeout",  # asyncio, builtins
    "APIConnectionError": "connection",
    "TransportError": "connection",  # httpx
    "ClientConnectionError": "connection",  # aiohttp
    "ConnectionError": "connection",  # builtins
    "BadRequestError": "bad_request",
    "AuthenticationError": "authentication",
    "PermissionDeniedError": "permission_denied",
    "NotFoundError": "not_found",
    "ConflictError": "conflict",
    "UnprocessableEntityError": "unprocessable_entity",
    "RateLimitError": "rate_limit",
    "InternalServerError": "internal_server",
    "ServiceUnavailableError": "internal_server",
}
UNREACHED = ("connection", "timeout")  # no HTTP status: the provider never answered
KIND_BY_STATUS = {
    400: "bad_request",
    401: "authentication",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limit",
}
LEADING_ID = re.compile(rb'^\s*\{\s*"id"\s*:\s*"([^"\\]{1,64})"')


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line longer than the limit: only its first bytes are kept, to find its request id."""

    head: bytes
    size: int


class LineSplitter:
    """Cuts a byte stream into lines of at most `limit` bytes without holding a longer one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.skipped: SkippedLine | None = None

    def feed(self, data: bytes) -> list[bytes | SkippedLine]:
        lines: list[bytes | SkippedLine] = []
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            self._add(data[start:end])
            if newline < 0:
                break
            lines.append(self.skipped or bytes(self.buffer))
            self.buffer.clear()
            self.skipped = None
            start = newline + 1
        return lines

    def _add(self, piece: bytes) -> None:
        if self.skipped is not None:
            self.skipped = SkippedLine(self.skipped.head, self.skipped.size + len(piece))
        elif len(self.buffer) + len(piece) > self.limit:
            head = bytes(self.buffer[:256]) + piece[: max(0, 256 - len(self.buffer))]
            self.skipped = SkippedLine(head, len(self.buffer) + len(piece))
            self.buffer.clear()
        else:
            self.buffer += piece


class Bridge:
    def __init__(self, protocol: BinaryIO, *, max_request: int, max_response: int) -> None:
        self.protocol = protocol
        self.max_request = max_request
        self.max_response = max_response
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.credits: dict[str, asyncio.Semaphore] = {}

    def write(self, message: dict[str, Any]) -> None:
        self.send(_encode(message))

    def send(self, line: bytes) -> None:
        try:
            self.protocol.write(line + b"\n")
            self.protocol.flush()
        except BrokenPipeError:
            pass  # the client is gone: the end of stdin follows, and with it the exit

    def reply(self, request_id: str, body: dict[str, Any]) -> bool:
        """Send one reply ("id" first); one over the size limit fails its request instead."""
        line = _encode({"id": request_id, **body})
        if len(line) <= self.max_response:
            self.send(line)
            return True
        what = "chunk" if "chunk" in body else "reply"
        message = f"the {what} is {len(line)} bytes, over the {self.max_response}-byte limit"
        self.write(
            {"id": request_id, "ok": False, "error": _error_body("response_too_large", message)}
        )
        return False

    async def completion(self, request_id: str, params: dict[str, Any]) -> None:
        import litellm

        response = await litellm.acompletion(**params)
        if not params.get("stream"):
            self.reply(request_id, {"ok": True, "result": _dump(response)})
            return
        credit = self.credits[request_id]
        chunks = aiter(response)
        try:
            while True:
                await credit.acquire()  # pauses reading from the provider while the client lags
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                if not self.reply(request_id, {"chunk": _dump(chunk)}):
                    return
        finally:
            await _close_stream(response)
        self.reply(request_id, {"ok": True, "done": True})

    async def run_request(self, request_id: str, method: str, params: dict[str, Any]) -> None:
        try:
            if method == "ping":
                result = {"pid": os.getpid(), "litellm": version("litellm"), "protocol": PROTOCOL}
                self.reply(request_id, {"ok": True, "result": result})
            else:
                await self.completion(request_id, params)
        except asyncio.CancelledError:
            # asked for by "cancel" or by the exit: the client no longer waits for this reply
            self.reply(request_id, {"ok": False, "error": _error_body("cancelled", "cancelled")})
        except Exception as err:  # noqa: BLE001 - every failure becomes a structured reply
            print(f"litellm_bridge: request {request_id!r} failed: {err!r}", file=sys.stderr)
            self.reply(request_id, {"ok": False, "error": _error(err)})
        finally:
            self.tasks.pop(request_id, None)
            self.credits.pop(request_id, None)

    def receive(self, line: bytes | SkippedLine) -> None:
        """Act on one line from the client: start a request, cancel one, or credit a stream."""
        request = self.parse(line)
        if request is None:
            return
        request_id, method = request["id"], request.get("method")
        if method == "cancel":
            if task := self.tasks.get(request_id):
                task.cancel()
        elif method == "credit":
            chunks = request.get("chunks")
            if (credit := self.credits.get(request_id)) and isinstance(chunks, int):
                for _ in range(max(0, chunks)):
                    credit.release()
        elif method not in ("completion", "ping"):
            self.fail(request_id, "protocol", f"unknown method {method!r}")
        elif request_id in self.tasks:
            self.fail(request_id, "protocol", f"request id {request_id!r} is already in use")
        elif not isinstance(params := request.get("params") or {}, dict):
            self.fail(request_id, "protocol", "params must be a JSON object")
        elif not isinstance(window := request.get("window", DEFAULT_WINDOW), int) or window < 1:
            self.fail(request_id, "protocol", "window must be a positive integer")
        else:
            self.credits[request_id] = asyncio.Semaphore(window)
            run = self.run_request(request_id, method, params)
            self.tasks[request_id] = asyncio.create_task(run)

    def parse(self, line: bytes | SkippedLine) -> dict[str, Any] | None:
        """The request on a line, or None after failing it (only it) when it cannot be read."""
        if isinstance(line, SkippedLine):
            message = f"the request is {line.size} bytes, over the {self.max_request}-byte limit"
            self.fail(_leading_id(line.head), "request_too_large", message)
            return None
        if not line.strip():
            return None
        try:
            request = json.loads(line)
        except ValueError as err:
            self.fail(_leading_id(line), "protocol", f"a request is not JSON: {err}")
            return None
        if not isinstance(request, dict) or not isinstance(request.get("id"), str):
            self.fail(None, "protocol", 'a request is a JSON object with a string "id"')
            return None
        return request

    def fail(self, request_id: str | None, kind: str, message: str) -> None:
        print(f"litellm_bridge: request {request_id!r}: {message}", file=sys.stderr)
        self.write({"id": request_id, "ok": False, "error": _error_body(kind, message)})

    async def serve(self, stdin: Any) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        self.write(
            {"ready": True, "protocol": PROTOCOL, "pid": os.getpid(), "litellm": version("litellm")}
        )
        lines = LineSplitter(self.max_request)
        while data := await reader.read(READ_SIZE):
            for line in lines.feed(data):
                self.receive(line)
        running = list(self.tasks.values())
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=EXIT_GRACE_SECONDS)


def _encode(message: dict[str, Any]) -> bytes:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)
    return line.encode("utf-8", "replace")


def _leading_id(line: bytes) -> str | None:
    match = LEADING_ID.match(line)
    return match[1].decode("utf-8", "replace") if match else None


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"kind": kind, "type": None, "status": None, "code": None, "message": message}


def _kind(err: BaseException) -> str:
    """The error's kind: a connection or timeout error anywhere in its cause chain first (litellm
    reports a provider it could not reach as InternalServerError 500), then its own class along
    the MRO, then its status."""
    chain: list[BaseException] = []
    link: BaseException | None = err
    while link is not None and link not in chain and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    kinds = [
        next(
            (KIND_BY_CLASS[c.__name__] for c in type(e).__mro__ if c.__name__ in KIND_BY_CLASS), ""
        )
        for e in chain
    ]
    if unreached := next((kind for kind in kinds if kind in UNREACHED), None):
        return unreached
    status = getattr(err, "status_code", None)
    if kinds[0] or not isinstance(status, int):
        return kinds[0] or "api"
    return KIND_BY_STATUS.get(status) or ("internal_server" if status >= 500 else "api")


def _error(err: BaseException) -> dict[str, Any]:
    kind = _kind(err)
    status = getattr(err, "status_code", None)
    code = getattr(err, "code", None)
    return {
        "kind": kind,
        "type": type(err).__name__,
        "status": status if isinstance(status, int) and kind not in UNREACHED else None,
        "code": code if isinstance(code, str | int) else None,
        "message": str(getattr(err, "message", None) or err),
        "provider": getattr(err, "llm_provider", None),
        "model": getattr(err, "model", None),
        "headers": _headers(err),
    }


def _headers(err: BaseException) -> dict[str, str] | None:
    """The provider's response headers (retry-after, x-ratelimit-*), when litellm kept them."""
    headers = getattr(err, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(err, "response", None), "headers", None)
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers).items()} if headers else None
    except (TypeError, ValueError):
        return None


async def _close_stream(stream: object) -> None:
    """Close a stream now, so that a stream left early (cancelled, or a chunk over the limit)
    closes its connection to the provider at once, not when the garbage collector gets to it.
    litellm's CustomStreamWrapper has no close of its own; the provider's stream it wraps has
    (openai.AsyncStream.aclose, an async generator's aclose)."""
    for obj in (getattr(stream, "completion_stream", None), stream):
        close = getattr(obj, "aclose", None)
        if callable(close):
            with contextlib.suppress(Exception):
                result = close()
                if inspect.isawaitable(result):
                    await result


def _dump(obj: Any) -> Any:
    return obj.model_dump() if hasattr(obj, "model_dump") else obj


def _limit(name: str) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_BYTES


def run() -> None:
    """Take stdout for the protocol (fd 1 then points at stderr, so that anything a library
    prints goes there), import litellm (before "ready", so the first request does not pay for
    it), serve until stdin closes, then exit without waiting for litellm's background work."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    # httpx's own transport, not litellm's aiohttp one: that one hands httpx the response body as
    # a bare async iterator, so closing a stream left early leaves its connection open and the
    # provider generating until the garbage collector gets to it (measured with litellm 1.78).
    os.environ.setdefault("DISABLE_AIOHTTP_TRANSPORT", "True")
    import litellm  # noqa: F401

    bridge = Bridge(
        protocol,
        max_request=_limit("PYBUILD_BRIDGE_MAX_REQUEST_BYTES"),
        max_response=_limit("PYBUILD_BRIDGE_MAX_RESPONSE_BYTES"),
    )
    asyncio.new_event_loop().run_until_complete(bridge.serve(sys.stdin))
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    run()
