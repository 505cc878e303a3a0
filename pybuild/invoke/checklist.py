"""The original design's testing checklist, automated: the function starts, litellm imports and
answers a chat request, errors come back as errors, warm requests stay fast.

The provider is a fake OpenAI endpoint on loopback (chat completions, plain and streamed); the
function finds it through ``OPENAI_API_BASE``/``OPENAI_BASE_URL`` (litellm reads both) and a fake
key. The events are what the shipped handler (integrations/node/handler.mjs) takes:
``{"model": ..., "messages": [...]}``. One model name makes the provider answer 404
``model_not_found``, which the OpenAI SDK does not retry: the invocation must come back as an
error, either Lambda's (``errorType``, ``errorMessage``) or a response with ``statusCode`` >= 400.
"""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pybuild.invoke.lifecycle import InvocationResult, LambdaFunction

REPLY = "pong"
MISSING_MODEL = "pybuild-missing-model"
MESSAGES = [{"role": "user", "content": "ping"}]
CHAT_EVENT = {"model": "openai/gpt-4o-mini", "messages": MESSAGES}
ERROR_EVENT = {"model": f"openai/{MISSING_MODEL}", "messages": MESSAGES}
# A warm request must take at most this share of the cold first response: it reuses the running
# Python (no interpreter start, no import), so it costs one model call through the bridge.
WARM_SHARE = 0.25


@dataclass
class FakeProvider:
    """An OpenAI-compatible chat endpoint on loopback that records the models asked for."""

    models: list[str] = field(default_factory=list)
    url: str = ""


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            model = str(body.get("model"))
            provider.models.append(model)
            if not self.path.endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "x"}})
            elif model == MISSING_MODEL:
                message = f"The model `{model}` does not exist (pybuild's fake provider)"
                error = {"message": message, "type": "invalid_request_error"}
                self._json(404, {"error": {**error, "param": None, "code": "model_not_found"}})
            elif body.get("stream"):
                self._stream(model)
            else:
                self._json(200, _completion(model))

        def _stream(self, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for delta, finish in (({"role": "assistant", "content": REPLY}, None), ({}, "stop")):
                chunk = {
                    "id": "chatcmpl-pybuild",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Handler


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-pybuild",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": REPLY},
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@contextmanager
def fake_provider() -> Iterator[FakeProvider]:
    """A `FakeProvider` on a free loopback port while the block runs; its `url` ends in /v1."""
    provider = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider.url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def provider_environment(provider: FakeProvider) -> dict[str, str]:
    """What the function needs to reach the fake provider (names litellm and openai read)."""
    return {
        "OPENAI_API_BASE": provider.url,
        "OPENAI_BASE_URL": provider.url,
        "OPENAI_API_KEY": "sk-pybuild-invoke",
    }


@dataclass(frozen=True, slots=True)
class Check:
    """One item of the checklist: what it checks, whether it passed, and what was seen (or "")."""

    name: str
    ok: bool
    detail: str


def _says(result: InvocationResult) -> str:
    text = result.body.decode("utf-8", "replace")
    return f"{result.status}: {text[:300]}"


def _is_error(result: InvocationResult) -> bool:
    document = result.document()
    if result.status == "error":
        return isinstance(document, dict) and {"errorType", "errorMessage"} <= set(document)
    if result.status == "ok" and isinstance(document, dict):
        status = document.get("statusCode")
        return isinstance(status, int) and status >= 400
    return False


def run_checklist(
    function: LambdaFunction, provider: FakeProvider, warm: int
) -> tuple[list[InvocationResult], list[Check]]:
    """Invoke the chat event cold, then `warm` times warm, then the error event; judge."""
    chat = json.dumps(CHAT_EVENT).encode()
    cold = function.invoke(chat)
    warm_results = [function.invoke(chat) for _ in range(warm)] if cold.ok else []
    failing = function.invoke(json.dumps(ERROR_EVENT).encode()) if cold.ok else None
    results = [cold, *warm_results, *([failing] if failing else [])]

    checks = [
        Check(
            "the function starts (its init phase ends without error)",
            cold.status not in ("init-error", "exit") and cold.init_ms is not None,
            "" if cold.init_ms is not None else _says(cold),
        ),
        Check(
            "litellm imports and answers a chat request through the fake provider",
            cold.ok and REPLY in cold.body.decode("utf-8", "replace") and bool(provider.models),
            "" if cold.ok else _says(cold),
        ),
    ]
    if failing is not None:
        checks.append(
            Check(
                "a provider error comes back as an error",
                _is_error(failing) and MISSING_MODEL in provider.models,
                _says(failing),
            )
        )
    if warm_results:
        checks.append(_warm_check(cold, warm_results))
    return results, checks


def _warm_check(cold: InvocationResult, warm: Sequence[InvocationResult]) -> Check:
    median = statistics.median(r.duration_ms for r in warm)
    limit = WARM_SHARE * cold.first_response_ms
    reused = all(r.ok and not r.cold for r in warm)
    detail = (
        f"median {median:.0f} ms over {len(warm)} warm invocations, cold first response "
        f"{cold.first_response_ms:.0f} ms (limit {WARM_SHARE:.0%} of it: {limit:.0f} ms)"
    )
    if not reused:
        detail += "; " + "; ".join(_says(r) for r in warm if not r.ok or r.cold)
    return Check(
        "warm requests reuse the environment and stay fast", reused and median <= limit, detail
    )


def summary(results: Sequence[InvocationResult]) -> list[str]:
    """One line per invocation, and the cold/warm figures."""
    lines = ["  #  start  status      init ms  duration ms  billed ms  max memory"]
    for number, result in enumerate(results, 1):
        init = f"{result.init_ms:.0f}" if result.init_ms is not None else "-"
        lines.append(
            f"{number:>3}  {'cold' if result.cold else 'warm':<5}  {result.status:<10}"
            f"{init:>9}  {result.duration_ms:>11.0f}  {result.billed_ms:>9}  "
            f"{result.max_memory_mb:>6} MB"
        )
    warm = [r.duration_ms for r in results if not r.cold and r.ok]
    if results:
        lines.append(f"cold first response: {results[0].first_response_ms:.0f} ms")
    if warm:
        lines.append(f"warm duration: median {statistics.median(warm):.0f} ms ({len(warm)})")
    return lines


def print_checks(checks: Sequence[Check], out: Callable[[str], None] = print) -> int:
    """Print PASS or FAIL for each check, with its detail, then a total; the number that failed."""
    for check in checks:
        out(f"{'PASS' if check.ok else 'FAIL'}  {check.name}")
        if check.detail:
            out(f"      {check.detail}")
    failed = sum(1 for c in checks if not c.ok)
    out(
        f"invoke: {failed} of {len(checks)} checks failed"
        if failed
        else f"invoke: all {len(checks)} checks passed"
    )
    return failed
