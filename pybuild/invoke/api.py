"""The Lambda Runtime API on loopback: what a Lambda execution environment offers its runtime.

The same HTTP API AWS documents for custom runtimes ("Using the Lambda runtime API"):

- ``GET /2018-06-01/runtime/invocation/next`` blocks until there is an event; the reply carries
  it with ``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms`` (epoch ms),
  ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id``;
- ``POST .../invocation/{id}/response`` (``Content-Length`` or chunked: a streamed response,
  whose error, if any, comes in the trailers ``Lambda-Runtime-Function-Error-Type`` and
  ``-Error-Body``), ``POST .../invocation/{id}/error`` (``{errorType, errorMessage,
  trace}``, type also in ``Lambda-Runtime-Function-Error-Type``), both answered 202;
- ``POST /2018-06-01/runtime/init/error`` when the runtime cannot load the function.

A response over Lambda's 6 MB limit is refused with 413 and fails the invocation
(``Function.ResponseSizeTooLarge``), as Lambda does. The server only records: when the runtime
first asked for an event (the end of its init phase), when each event was handed out and when its
result came back. Deadlines and killing the runtime are `environment`'s.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"


def trace_header() -> str:
    """An X-Ray trace header as Lambda passes it (not sampled: nothing is sent anywhere)."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"


@dataclass
class Invocation:
    """One event, and what became of it. Times are `time.monotonic()` seconds."""

    event: bytes
    timeout: float  # seconds from delivery, unless `deadline` is set
    function_arn: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=trace_header)
    deadline: float | None = None  # monotonic; default: delivery + timeout
    delivered: float | None = None
    deadline_ms: int = 0
    finished: float | None = None
    response: bytes | None = None
    error: bytes | None = None  # the error document the runtime posted, JSON
    error_type: str | None = None

    @property
    def done(self) -> bool:
        """Whether the invocation has ended: a response, an error, or failed from outside."""
        return self.finished is not None


def error_document(error_type: str, message: str) -> bytes:
    """A Lambda error document, ``{errorType, errorMessage}``, as JSON bytes."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class RuntimeApi:
    """The server and its state; `endpoint` is what AWS_LAMBDA_RUNTIME_API holds."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: deque[Invocation] = deque()
        self._current: Invocation | None = None
        self._closed = False
        self.first_next: float | None = None  # the runtime's init phase ended here
        self.init_error: tuple[str, bytes] | None = None  # (error type, document)
        self.init_error_at: float | None = None
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``: where the server listens, without a scheme."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def submit(self, invocation: Invocation) -> None:
        """Queue an event; each ``GET .../invocation/next`` takes the oldest one, waiting for it."""
        with self._lock:
            self._pending.append(invocation)
            self._lock.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` (checked under the lock) holds or `timeout` passes."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def fail(self, invocation: Invocation, error_type: str, message: str) -> None:
        """End an invocation from outside (timeout, runtime exit), unless it already ended."""
        with self._lock:
            if invocation.done:
                return
            invocation.error_type = error_type
            invocation.error = error_document(error_type, message)
            invocation.finished = time.monotonic()
            if self._current is invocation:
                self._current = None
            self._lock.notify_all()

    def close(self) -> None:
        """Stop the server; a runtime waiting for an event gets a 500 ``Runtime.ShuttingDown``.
        Calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def notify(self) -> None:
        """Wake every waiter (the runtime process changed state)."""
        with self._lock:
            self._lock.notify_all()

    # --- called by the HTTP handler -------------------------------------------------------

    def _next(self) -> Invocation | None:
        with self._lock:
            if self.first_next is None:
                self.first_next = time.monotonic()
                self._lock.notify_all()
            self._lock.wait_for(lambda: bool(self._pending) or self._closed)
            if self._closed:
                return None
            invocation = self._pending.popleft()
            invocation.delivered = now = time.monotonic()
            if invocation.deadline is None:
                invocation.deadline = now + invocation.timeout
            invocation.deadline_ms = int((time.time() + invocation.deadline - now) * 1000)
            self._current = invocation
            return invocation

    def _finish(
        self,
        request_id: str,
        *,
        response: bytes | None = None,
        error: bytes | None = None,
        error_type: str | None = None,
    ) -> bool:
        with self._lock:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return False
            invocation.response = response
            invocation.error = error
            invocation.error_type = error_type
            invocation.finished = time.monotonic()
            self._current = None
            self._lock.notify_all()
            return True

    def _init_error(self, error_type: str, document: bytes) -> None:
        with self._lock:
            self.init_error = (error_type, document)
            self.init_error_at = time.monotonic()
            self._lock.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A runtime killed mid-request (timeout, exit) is expected: nothing to print."""


def _handler_class(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: aws-lambda-ric's client reuses its socket

        def setup(self) -> None:
            super().setup()
            # headers and body leave in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every reply
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(
            self, status: int, payload: object, headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> tuple[bytes, dict[str, str]]:
            """The request body (Content-Length or chunked) and any trailers."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0)), {}
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            trailers = {}
            while (line := self.rfile.readline().strip()) != b"":
                name, _, value = line.decode("latin-1").partition(":")
                trailers[name.strip().lower()] = value.strip()
            return b"".join(chunks), trailers

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
                return
            invocation = api._next()
            if invocation is None:  # the environment is going away
                self._reply(500, {"errorType": "Runtime.ShuttingDown", "errorMessage": ""})
                return
            self._reply(
                200,
                invocation.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                    "Lambda-Runtime-Trace-Id": invocation.trace_id,
                },
            )

        def do_POST(self) -> None:
            body, trailers = self._body()
            parts = self.path.removeprefix(PREFIX + "/").split("/")
            if parts == ["init", "error"]:
                api._init_error(self.headers.get(ERROR_TYPE_HEADER) or _type_of(body), body)
                self._reply(202, {"status": "OK"})
                return
            if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
                self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
                return
            request_id, kind = parts[1], parts[2]
            if kind == "response" and "lambda-runtime-function-error-type" in trailers:
                kind = "error"  # a streamed response that failed half-way
                body = _decoded(trailers.get(ERROR_BODY_TRAILER.lower(), "")) or body
                error_type = trailers["lambda-runtime-function-error-type"]
            else:
                error_type = self.headers.get(ERROR_TYPE_HEADER) or _type_of(body)
            if kind == "response" and len(body) > MAX_RESPONSE_BYTES:
                message = (
                    f"Response payload size ({len(body)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_RESPONSE_BYTES} bytes)."
                )
                api._finish(
                    request_id,
                    error=error_document("Function.ResponseSizeTooLarge", message),
                    error_type="Function.ResponseSizeTooLarge",
                )
                self._reply(413, {"errorType": "RequestEntityTooLarge", "errorMessage": message})
                return
            if kind == "response":
                known = api._finish(request_id, response=body)
            else:
                known = api._finish(request_id, error=body, error_type=error_type)
            if not known:
                self._reply(
                    400,
                    {"errorType": "InvalidRequestID", "errorMessage": f"unknown {request_id}"},
                )
                return
            self._reply(202, {"status": "OK"})

    return Handler


def _decoded(trailer: str) -> bytes:
    """The error body of a streamed response's trailer: base64, or nothing if it is not (the
    invocation then fails with what was streamed, instead of never being answered)."""
    try:
        return base64.b64decode(trailer, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _type_of(document: bytes) -> str:
    try:
        parsed = json.loads(document)
    except ValueError:
        return "Unhandled"
    error_type = parsed.get("errorType") if isinstance(parsed, dict) else None
    return error_type if isinstance(error_type, str) else "Unhandled"
