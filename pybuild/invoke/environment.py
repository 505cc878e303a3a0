"""One execution environment: a runtime process, its Runtime API, its output and its memory.

The process starts with Lambda's environment for a Node.js function (`data/lambda-environment.toml`
plus the per-function variables Lambda sets), the function's own variables and
``AWS_LAMBDA_RUNTIME_API`` pointing at this environment's `RuntimeApi`. It runs in a session of its
own, so that everything it starts (Node, the Python it spawns, qemu) is killed together, as Lambda
freezes and discards a whole sandbox. Max memory is the largest sum of resident memory over that
session, sampled every 50 ms: an estimate of what Lambda's cgroup reports (under qemu it includes
the emulator's own memory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.elf.policy import lambda_environment
from pybuild.invoke.api import Invocation, RuntimeApi

SAMPLE_SECONDS = 0.05
# Lambda's limit on the init phase of on-demand functions (AWS docs, "Lambda execution
# environment lifecycle"); past it the init runs again inside the first invocation.
LAMBDA_INIT_LIMIT = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """What a Lambda function's configuration says, as far as running it goes."""

    task_root: Path  # the function's code (LAMBDA_TASK_ROOT)
    handler: str = "handler.handler"  # _HANDLER: file (without extension) and export
    runtime: str = "nodejs24.x"
    name: str = "pybuild-invoke"
    memory_mb: int = 1024
    timeout: float = 60.0  # seconds per invocation, as Lambda enforces it
    init_timeout: float = LAMBDA_INIT_LIMIT
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        """A function ARN for `name` in a placeholder account and region (nothing reaches AWS)."""
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.name}"


@dataclass(frozen=True, slots=True)
class Launch:
    """How the runtime process starts: the command (Node and its runtime client) as the layer
    sees it, and variables it needs beyond the function's (PYBUILD_PYTHON under qemu)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def function_environment(config: FunctionConfig, endpoint: str) -> dict[str, str]:
    """The variables a Node.js function's process starts with on Lambda."""
    stream = time.strftime("%Y/%m/%d") + f"/[$LATEST]{uuid.uuid4().hex}"
    return {
        **lambda_environment(),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(config.task_root),
        "_HANDLER": config.handler,
        "AWS_LAMBDA_RUNTIME_API": endpoint,
    }


class ExecutionEnvironment:
    """Starts the runtime at construction; `init` and `run` drive it; `close` ends it."""

    def __init__(self, config: FunctionConfig, launch: Launch, log: Callable[[str], None]):
        self.config = config
        self.api = RuntimeApi()
        env = {
            **function_environment(config, self.api.endpoint),
            **config.env,
            **launch.env,
        }
        self.log = log
        self.exit_code: int | None = None
        self.exited_at: float | None = None
        self.peak_bytes = 0
        self._stop = threading.Event()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            launch.argv,
            env=env,
            cwd=config.task_root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        threading.Thread(target=self._sample_memory, daemon=True).start()

    # --- the process ------------------------------------------------------------------------

    def _read_output(self) -> None:
        assert self.process.stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        with self.process.stdout:
            for raw in self.process.stdout:
                self.log(raw.decode("utf-8", "replace").rstrip("\n"))
        self.exit_code = self.process.wait()
        self.exited_at = time.monotonic()
        self.api.notify()

    @property
    def exited(self) -> bool:
        """Whether the runtime process has exited (and its output has been read to the end)."""
        return self.exited_at is not None

    def sample_memory(self) -> int:
        """Resident memory of every process of the session now; the peak is kept."""
        total = sum(_rss(pid) for pid in _session_members(self.process.pid))
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _sample_memory(self) -> None:
        while not self._stop.is_set():
            self.sample_memory()
            self._stop.wait(SAMPLE_SECONDS)

    @property
    def max_memory_mb(self) -> int:
        """The session's peak resident memory so far, in MB rounded up (sampled once more first
        while the environment is open)."""
        if not self._stop.is_set():
            self.sample_memory()
        return -(-self.peak_bytes // (1024 * 1024))

    def close(self) -> None:
        """Kill everything the runtime started and stop the API (once: the group id is not
        ours any more after that)."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(ProcessLookupError):  # the leader may be gone, not its children
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.api.close()

    # --- the phases -------------------------------------------------------------------------

    def init(self, limit: float) -> str:
        """Wait for the end of the init phase: "ready" (the runtime asked for its first event),
        "error" (it posted an init error), "exit" or "timeout"."""
        api = self.api
        api.wait(
            lambda: api.first_next is not None or api.init_error is not None or self.exited,
            max(0.0, self.started + limit - time.monotonic()),
        )
        if api.init_error is not None:
            return "error"
        if api.first_next is not None:
            return "ready"
        return "exit" if self.exited else "timeout"

    @property
    def init_ended(self) -> float:
        """When the init phase ended (monotonic seconds): the earliest of the runtime's first
        ``/next``, its init error and its exit; now, if none has happened yet."""
        ends = [t for t in (self.api.first_next, self.api.init_error_at, self.exited_at) if t]
        return min(ends) if ends else time.monotonic()

    def run(self, invocation: Invocation) -> str:
        """Hand the event to the runtime and wait for its result: "ok", "error", "timeout" (past
        the deadline: the runtime is killed, as Lambda does) or "exit"."""
        api = self.api
        submitted = time.monotonic()
        api.submit(invocation)
        while not invocation.done:
            if self.exited:
                api.fail(
                    invocation,
                    "Runtime.ExitError",
                    f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                    f"{_exit_status(self.exit_code)}",
                )
                return "exit"
            deadline = invocation.deadline or submitted + invocation.timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                api.fail(
                    invocation,
                    "Sandbox.Timedout",
                    f"RequestId: {invocation.request_id} Error: Task timed out after "
                    f"{self.config.timeout:.2f} seconds",
                )
                self.close()
                return "timeout"
            api.wait(lambda: invocation.done or self.exited, min(remaining, 0.5))
        return "ok" if invocation.error is None else "error"


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
    return f"exit status {code}"


def _session_members(session: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 3 and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
