"""A scriptable peer of the Node client for its fast tests (started with the host's python3).

It speaks the bridge protocol (layer/bridge/litellm_bridge.py) without litellm: each request's
params["fake"] says what to do, and every message it receives is logged to stderr as
"fake_bridge: <method> <id> [...]", so tests can see what reached Python. The real bridge is
tested against the real layer in test/layer.test.mjs.

Options: --ready-after SECONDS, --protocol N, --no-ready, --exit-at-start CODE,
--stderr TEXT (written at start, as is), --ignore-eof, --ignore-sigterm.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any


def write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def log(text: str) -> None:
    sys.stderr.write(f"fake_bridge: {text}\n")
    sys.stderr.flush()


Message = dict[str, Any]


class Fake:
    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.credits: dict[str, asyncio.Semaphore] = {}

    async def echo(self, request_id: str, params: Message) -> None:
        last = (params.get("messages") or [{}])[-1].get("content", "")
        content = params.get("mock_response", last)
        result = {"choices": [{"message": {"content": content}}], "params": params}
        await asyncio.sleep(params.get("delay", 0))
        write({"id": request_id, "ok": True, "result": result})

    async def stream(self, request_id: str, params: Message) -> None:
        for index in range(params.get("count", 3)):
            if params["fake"] == "stream":  # "stream_greedy" ignores the window
                await self.credits[request_id].acquire()
            write({"id": request_id, "chunk": {"choices": [{"delta": {"content": str(index)}}]}})
            await asyncio.sleep(0)
        write({"id": request_id, "ok": True, "done": True})

    async def misbehave(self, request_id: str, params: Message) -> None:
        fake = params["fake"]
        if fake == "env":
            write({"id": request_id, "ok": True, "result": dict(os.environ)})
        elif fake == "hang":
            await asyncio.sleep(3600)
        elif fake == "error":
            write({"id": request_id, "ok": False, "error": params["error"]})
        elif fake == "big":
            write({"id": request_id, "ok": True, "result": "x" * params["bytes"]})
        elif fake == "garbage":
            sys.stdout.write("Traceback (most recent call last)\n")
            sys.stdout.flush()
        elif fake == "exit":
            sys.stderr.write(params.get("stderr", ""))
            sys.stderr.flush()
            os._exit(params.get("code", 1))
        elif fake == "stderr":
            for piece in params["pieces"]:  # separate writes: lines cut across reads
                sys.stderr.write(piece)
                sys.stderr.flush()
                await asyncio.sleep(0.05)
            write({"id": request_id, "ok": True, "result": "written"})

    async def run(self, request_id: str, method: str, params: Message) -> None:
        try:
            if method == "ping":
                write({"id": request_id, "ok": True, "result": {"pid": os.getpid(), "protocol": 2}})
            elif params.get("fake") in ("stream", "stream_greedy"):
                await self.stream(request_id, params)
            elif params.get("fake"):
                await self.misbehave(request_id, params)
            else:
                await self.echo(request_id, params)
        except asyncio.CancelledError:
            write({"id": request_id, "ok": False, "error": {"kind": "cancelled", "message": ""}})
        finally:
            self.tasks.pop(request_id, None)

    def receive(self, line: bytes) -> None:
        message = json.loads(line)
        request_id, method = message["id"], message.get("method")
        extra = f" {message['chunks']}" if method == "credit" else ""
        log(f"{method} {request_id}{extra}")
        if method == "cancel":
            if task := self.tasks.get(request_id):
                task.cancel()
        elif method == "credit":
            for _ in range(message["chunks"]):
                self.credits[request_id].release()
        else:
            self.credits[request_id] = asyncio.Semaphore(message.get("window", 16))
            run = self.run(request_id, method, message.get("params") or {})
            self.tasks[request_id] = asyncio.create_task(run)


async def main(options: argparse.Namespace) -> None:
    if options.exit_at_start is not None:
        sys.exit(options.exit_at_start)
    if options.ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: log("SIGTERM ignored"))
    await asyncio.sleep(options.ready_after)
    if not options.no_ready:
        write({"ready": True, "protocol": options.protocol, "pid": os.getpid(), "litellm": "fake"})
    fake = Fake()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
        if line.strip():
            fake.receive(line)
    log("stdin closed")
    if options.ignore_eof:
        await asyncio.sleep(3600)
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-after", type=float, default=0)
    parser.add_argument("--protocol", type=int, default=2)
    parser.add_argument("--no-ready", action="store_true")
    parser.add_argument("--exit-at-start", type=int)
    parser.add_argument("--stderr", default="")
    parser.add_argument("--ignore-eof", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    arguments = parser.parse_args()
    sys.stderr.write(arguments.stderr)
    sys.stderr.flush()
    asyncio.run(main(arguments))
