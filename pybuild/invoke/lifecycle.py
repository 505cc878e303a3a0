"""A function over a series of invocations, with Lambda's lifecycle and log lines.

- The first invocation starts an execution environment (cold); its init phase ends when the
  runtime first asks for an event. Lambda limits the init phase of an on-demand function to 10 s;
  an init that fails or runs out of time is reported in an ``INIT_REPORT`` line and run again
  inside the invocation, within the function's timeout ("suppressed init"), whose Duration then
  includes it.
- Later invocations reuse the environment (warm), until one times out or the runtime exits:
  then it is discarded, and the next invocation is cold again.
- Each invocation logs ``START``, ``END`` and ``REPORT`` as Lambda does. Billed Duration is
  Duration plus Init Duration, rounded up to the millisecond: Lambda bills the init phase of
  on-demand functions with managed runtimes since 2025-08-01 (AWS Compute Blog, "AWS Lambda
  standardizes billing for INIT Phase").
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pybuild.invoke.api import Invocation, error_document
from pybuild.invoke.environment import ExecutionEnvironment, FunctionConfig, Launch


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """One invocation as the caller and the REPORT line see it; times are in milliseconds."""

    request_id: str
    status: str  # "ok", "error" (the function's), "timeout", "exit", "init-error"
    body: bytes  # the response, or the error document Lambda returns for it
    error_type: str | None
    cold: bool
    duration_ms: float
    init_ms: float | None  # the init phase, when it ran apart from the invocation
    memory_mb: int
    max_memory_mb: int

    @property
    def ok(self) -> bool:
        """Whether the function returned a response (status "ok")."""
        return self.status == "ok"

    @property
    def billed_ms(self) -> int:
        """Billed Duration: Duration plus Init Duration (if any), rounded up to the millisecond."""
        return math.ceil(self.duration_ms + (self.init_ms or 0.0))

    @property
    def first_response_ms(self) -> float:
        """What the caller waits: init (if any) plus the invocation."""
        return self.duration_ms + (self.init_ms or 0.0)

    def document(self) -> Any:
        """The body parsed as JSON, or as text if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode("utf-8", "replace")

    def report(self) -> str:
        """The ``REPORT`` line Lambda logs for the invocation, its fields separated by tabs."""
        fields = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_mb} MB",
        ]
        if self.init_ms is not None:
            fields.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status == "timeout":
            fields.append("Status: timeout")
        elif self.status in ("exit", "init-error"):
            fields += ["Status: error", f"Error Type: {self.error_type}"]
        return "\t".join(fields)


class LambdaFunction:
    """Invokes a function one event at a time, reusing its environment while it lives."""

    def __init__(
        self, config: FunctionConfig, launch: Launch, log: Callable[[str], None] = print
    ) -> None:
        self.config = config
        self.launch = launch
        self.log = log
        self.environment: ExecutionEnvironment | None = None

    def _start(self) -> ExecutionEnvironment:
        self.log(f"INIT_START Runtime: {self.config.runtime} (pybuild invoke)")
        return ExecutionEnvironment(self.config, self.launch, self.log)

    def close(self) -> None:
        """Discard the execution environment, if there is one; the next invocation is cold."""
        if self.environment is not None:
            self.environment.close()
            self.environment = None

    def invoke(self, event: bytes) -> InvocationResult:
        """Invoke the function with one event (JSON bytes), logging START, END and REPORT.

        Without an environment, starts one first (cold); an init that fails or times out runs
        again inside the invocation. An invocation that times out or whose runtime exits discards
        the environment. What the function does wrong is in the result's status, not raised.
        """
        config = self.config
        invocation = Invocation(event=event, timeout=config.timeout, function_arn=config.arn)
        cold = self.environment is None
        init_ms: float | None = None
        clock: float | None = None  # where Duration starts, if not at delivery
        if self.environment is None:
            environment = self._start()
            state = environment.init(config.init_timeout)
            if state == "ready":
                init_ms = (environment.init_ended - environment.started) * 1000
            else:
                self._init_report(environment, state, "init")
                environment.close()
                environment = self._start()
                clock = environment.started
                invocation.deadline = clock + config.timeout
                state = environment.init(config.timeout)
                if state != "ready":
                    return self._failed_init(environment, invocation, state)
            self.environment = environment
        environment = self.environment
        self.log(f"START RequestId: {invocation.request_id} Version: $LATEST")
        status = environment.run(invocation)
        finished = invocation.finished or time.monotonic()
        start = clock or invocation.delivered or finished
        self.log(f"END RequestId: {invocation.request_id}")
        result = InvocationResult(
            request_id=invocation.request_id,
            status=status,
            body=(invocation.response if status == "ok" else invocation.error) or b"",
            error_type=invocation.error_type,
            cold=cold,
            duration_ms=(finished - start) * 1000,
            init_ms=init_ms,
            memory_mb=config.memory_mb,
            max_memory_mb=environment.max_memory_mb,
        )
        self.log(result.report())
        if status in ("timeout", "exit"):
            self.close()
        return result

    def _init_report(self, environment: ExecutionEnvironment, state: str, phase: str) -> None:
        elapsed = (environment.init_ended - environment.started) * 1000
        line = f"INIT_REPORT Init Duration: {elapsed:.2f} ms\tPhase: {phase}\tStatus: "
        if state == "error" and environment.api.init_error is not None:
            line += f"error\tError Type: {environment.api.init_error[0]}"
        elif state == "exit":
            line += "error\tError Type: Runtime.ExitError"
        else:
            line += "timeout"
        self.log(line)

    def _failed_init(
        self, environment: ExecutionEnvironment, invocation: Invocation, state: str
    ) -> InvocationResult:
        """The init, run again inside the invocation, failed too: that is the result."""
        config = self.config
        request = invocation.request_id
        self.log(f"START RequestId: {request} Version: $LATEST")
        self._init_report(environment, state, "invoke")
        init_error = environment.api.init_error
        if state == "error" and init_error is not None:
            error_type, body, status = init_error[0], init_error[1], "init-error"
        elif state == "exit":
            error_type, status = "Runtime.ExitError", "init-error"
            body = error_document(
                error_type,
                f"RequestId: {request} Error: Runtime exited with error: exit status "
                f"{environment.exit_code}",
            )
        else:
            error_type, status = "Sandbox.Timedout", "timeout"
            body = error_document(
                error_type,
                f"RequestId: {request} Error: Task timed out after {config.timeout:.2f} seconds",
            )
        elapsed = (environment.init_ended - environment.started) * 1000
        max_memory = environment.max_memory_mb
        environment.close()
        self.log(f"END RequestId: {request}")
        result = InvocationResult(
            request_id=request,
            status=status,
            body=body,
            error_type=error_type,
            cold=True,
            duration_ms=elapsed,
            init_ms=None,
            memory_mb=config.memory_mb,
            max_memory_mb=max_memory,
        )
        self.log(result.report())
        return result
