"""`pybuild invoke`: the Runtime API server on its own, then with tiny handlers under both
runtime clients (aws-lambda-ric 3.3.0 from .node-tools, installed by scripts/test, and pybuild's
own loop), then the shipped handler (integrations/node) on the reference layer, built with the
Debian stand-in runtime and run under qemu with the layer at /opt."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from conftest import REPO
from pybuild.invoke import FunctionConfig, function_session
from pybuild.invoke.api import MAX_RESPONSE_BYTES, PREFIX, Invocation, RuntimeApi
from pybuild.invoke.clients import RuntimeClient, loop_client, ric_client
from pybuild.invoke.lifecycle import LambdaFunction

RIC = REPO / ".node-tools" / "node_modules" / "aws-lambda-ric"

HANDLERS = """
export const echo = async (event, context) => ({
  event,
  pid: process.pid,
  requestId: context.awsRequestId,
  arn: context.invokedFunctionArn,
  remaining: context.getRemainingTimeInMillis(),
  trace: process.env._X_AMZN_TRACE_ID,
  taskRoot: process.env.LAMBDA_TASK_ROOT,
  memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
});
export const throws = async () => { throw new TypeError("bad input"); };
export const hangs = () => new Promise(() => setInterval(() => {}, 1000));
export const exits = async () => { process.exit(3); };
"""


# --- the server alone -----------------------------------------------------------------------


_CONNECTIONS: list[http.client.HTTPConnection] = []  # closed after each test by `api`


def _connect(api: RuntimeApi) -> http.client.HTTPConnection:
    host, port = api.endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    _CONNECTIONS.append(connection)
    return connection


class _Client:
    """What a runtime does, over plain HTTP."""

    def __init__(self, api: RuntimeApi) -> None:
        self.connection = _connect(api)

    def request(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        self.connection.request(method, PREFIX + path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    server = RuntimeApi()
    yield server
    server.close()
    while _CONNECTIONS:
        _CONNECTIONS.pop().close()


def _deliver(
    api: RuntimeApi, event: bytes = b'{"x": 1}'
) -> tuple[Invocation, _Client, dict[str, str]]:
    invocation = Invocation(event=event, timeout=30, function_arn="arn:aws:lambda:x")
    api.submit(invocation)
    client = _Client(api)
    status, headers, body = client.request("GET", "/invocation/next")
    assert (status, body) == (200, event)
    return invocation, client, headers


def test_next_carries_the_event_and_lambdas_headers(api: RuntimeApi) -> None:
    invocation, client, headers = _deliver(api)
    assert api.first_next is not None
    assert headers["Lambda-Runtime-Aws-Request-Id"] == invocation.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:x"
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert deadline == invocation.deadline_ms
    status, _, _ = client.request("POST", "/invocation/someone-else/response", b"{}")
    assert status == 400
    status, _, _ = client.request("POST", f"/invocation/{invocation.request_id}/response", b"42")
    assert status == 202
    assert invocation.done and invocation.response == b"42" and invocation.error is None


def test_an_error_keeps_its_type_and_document(api: RuntimeApi) -> None:
    invocation, client, _ = _deliver(api)
    document = json.dumps({"errorType": "TypeError", "errorMessage": "bad", "trace": []})
    status, _, _ = client.request(
        "POST",
        f"/invocation/{invocation.request_id}/error",
        document.encode(),
        **{"Lambda-Runtime-Function-Error-Type": "TypeError"},
    )
    assert status == 202
    assert invocation.error_type == "TypeError" and invocation.error == document.encode()


def test_a_response_over_six_megabytes_fails_the_invocation(api: RuntimeApi) -> None:
    invocation, client, _ = _deliver(api)
    too_big = b'"' + b"x" * MAX_RESPONSE_BYTES + b'"'
    status, _, body = client.request(
        "POST", f"/invocation/{invocation.request_id}/response", too_big
    )
    assert status == 413 and b"RequestEntityTooLarge" in body
    assert invocation.error_type == "Function.ResponseSizeTooLarge"


def test_a_streamed_response_and_its_error_trailers(api: RuntimeApi) -> None:
    for trailer in (None, "Runtime.StreamError", "Runtime.BadTrailer"):
        invocation, _, _ = _deliver(api)
        connection = _connect(api)
        connection.putrequest("POST", f"{PREFIX}/invocation/{invocation.request_id}/response")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.endheaders()
        connection.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n")
        if trailer:
            document = json.dumps({"errorType": trailer, "errorMessage": "half-way"}).encode()
            encoded = base64.b64encode(document).decode()
            if trailer == "Runtime.BadTrailer":
                encoded = "%%% not base64 %%%"
            connection.send(
                f"Lambda-Runtime-Function-Error-Type: {trailer}\r\n"
                f"Lambda-Runtime-Function-Error-Body: {encoded}\r\n".encode()
            )
        connection.send(b"\r\n")
        assert connection.getresponse().status == 202
        if trailer == "Runtime.BadTrailer":  # answered, failed, with what was streamed
            assert invocation.error_type == trailer and invocation.error == b"hello world"
        elif trailer:
            assert invocation.error_type == trailer and b"half-way" in (invocation.error or b"")
        else:
            assert invocation.response == b"hello world"


def test_init_error(api: RuntimeApi) -> None:
    client = _Client(api)
    document = json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": "x"})
    status, _, _ = client.request(
        "POST",
        "/init/error",
        document.encode(),
        **{"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert status == 202
    assert api.init_error == ("Runtime.ImportModuleError", document.encode())


def test_next_waits_for_an_event(api: RuntimeApi) -> None:
    answered: list[int] = []

    def ask() -> None:
        answered.append(_Client(api).request("GET", "/invocation/next")[0])

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive() and not answered
    api.submit(Invocation(event=b"{}", timeout=1, function_arn="arn"))
    thread.join(5)
    assert answered == [200]


# --- with a Node.js runtime client ----------------------------------------------------------


def _clients() -> list[str]:
    return ["loop", "ric"]


def _client(kind: str, handler: str) -> RuntimeClient:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if kind == "loop":
        return loop_client()
    if not RIC.is_dir():
        pytest.skip(f"{RIC.relative_to(REPO)} is missing: run scripts/test, which installs it")
    return ric_client(RIC, handler)


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "function"
    root.mkdir()
    (root / "index.mjs").write_text(HANDLERS, encoding="utf-8")
    (root / "broken.mjs").write_text('import "no-such-package";\nexport const h = 1;\n')
    (root / "slowinit.mjs").write_text(
        "await new Promise((r) => setTimeout(r, 2500));\nexport const handler = async () => 7;\n"
    )
    return root


def _session(
    root: Path,
    kind: str,
    handler: str,
    lines: list[str],
    *,
    timeout: float = 60.0,
    init_timeout: float = 10.0,
) -> AbstractContextManager[tuple[LambdaFunction, str]]:
    config = FunctionConfig(
        task_root=root, handler=handler, memory_mb=256, timeout=timeout, init_timeout=init_timeout
    )
    return function_session(config, _client(kind, handler), None, log=lines.append)


@pytest.mark.parametrize("kind", _clients())
def test_echo_cold_then_warm(task_root: Path, kind: str) -> None:
    lines: list[str] = []
    with _session(task_root, kind, "index.echo", lines, timeout=5) as (function, _):
        first = function.invoke(b'{"hello": "world"}')
        second = function.invoke(b"[1, 2]")
    assert first.ok and second.ok, (first, second)
    one, two = first.document(), second.document()
    assert one["event"] == {"hello": "world"} and two["event"] == [1, 2]
    assert one["pid"] == two["pid"]  # the same environment, warm
    assert (first.cold, second.cold) == (True, False)
    assert first.init_ms is not None and second.init_ms is None
    assert one["requestId"] == first.request_id
    assert one["arn"].endswith(":function:pybuild-invoke")
    assert 4000 < one["remaining"] <= 5000  # the deadline header
    assert one["trace"].startswith("Root=1-") and one["taskRoot"] == str(task_root)
    assert one["memory"] == "256"
    reports = [line for line in lines if line.startswith("REPORT ")]
    assert len(reports) == 2 and "Init Duration" in reports[0] and "Init Duration" not in reports[1]
    assert reports[1] == second.report()
    assert "Memory Size: 256 MB" in reports[0] and second.max_memory_mb > 0


@pytest.mark.parametrize("kind", _clients())
def test_a_throwing_handler_returns_lambdas_error_shape(task_root: Path, kind: str) -> None:
    lines: list[str] = []
    with _session(task_root, kind, "index.throws", lines) as (function, _):
        first = function.invoke(b"{}")
        second = function.invoke(b"{}")
    assert first.status == "error" and first.error_type == "TypeError"
    document = first.document()
    assert document["errorType"] == "TypeError" and document["errorMessage"] == "bad input"
    assert document["trace"][0] == "TypeError: bad input"
    assert not second.cold  # a function error keeps the environment


@pytest.mark.parametrize("kind", _clients())
def test_a_handler_past_its_timeout_is_killed(task_root: Path, kind: str) -> None:
    lines: list[str] = []
    with _session(task_root, kind, "index.hangs", lines, timeout=1) as (function, _):
        first = function.invoke(b"{}")
        environment_gone = function.environment is None
        second = function.invoke(b"{}")
    assert first.status == "timeout" and first.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in first.document()["errorMessage"]
    assert 1000 <= first.duration_ms < 1500
    assert "Status: timeout" in first.report()
    assert environment_gone and second.cold  # killed, and started again


@pytest.mark.parametrize("kind", _clients())
def test_a_runtime_that_exits(task_root: Path, kind: str) -> None:
    lines: list[str] = []
    with _session(task_root, kind, "index.exits", lines) as (function, _):
        result = function.invoke(b"{}")
    assert result.status == "exit" and result.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in result.document()["errorMessage"]


@pytest.mark.parametrize("kind", _clients())
def test_an_init_error_is_retried_in_the_invocation(task_root: Path, kind: str) -> None:
    lines: list[str] = []
    with _session(task_root, kind, "broken.h", lines) as (function, _):
        result = function.invoke(b"{}")
    assert result.status == "init-error"
    assert "no-such-package" in result.document()["errorMessage"]
    init_reports = [line for line in lines if line.startswith("INIT_REPORT")]
    assert [r.split("Phase: ")[1].split()[0] for r in init_reports] == ["init", "invoke"]


def test_an_init_over_its_limit_runs_again_inside_the_invocation(task_root: Path) -> None:
    lines: list[str] = []
    with _session(task_root, "loop", "slowinit.handler", lines, init_timeout=1, timeout=10) as (
        function,
        _,
    ):
        result = function.invoke(b"{}")
    assert result.ok and result.document() == 7
    assert any("Phase: init\tStatus: timeout" in line for line in lines)
    assert result.cold and result.init_ms is None and result.duration_ms >= 2500


LAYER_PROBE = """
import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";
export const handler = async () => {
  let writable = true;
  try { writeFileSync("/opt/probe", "x"); } catch { writable = false; }
  const python = process.env.PYBUILD_PYTHON;
  return { python, wrapper: python ? readFileSync(python, "utf8") : null, writable,
           interpreter: (() => { try { accessSync("/opt/python/bin/python3.11", constants.X_OK);
                                      return true; } catch { return false; } })() };
};
"""


def test_the_layer_is_read_only_at_opt_and_python_goes_through_qemu(
    tmp_path: Path, task_root: Path
) -> None:
    """The layer mount and the PYBUILD_PYTHON wrapper, with a tiny aarch64 "interpreter"."""
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    import zipfile

    from helpers import FIXTURES

    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        info = zipfile.ZipInfo("python/bin/python3.11")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, (FIXTURES / "hello-aarch64").read_bytes())
    (task_root / "probe.mjs").write_text(LAYER_PROBE, encoding="utf-8")
    sysroot = tmp_path / "sysroot"
    sysroot.mkdir()
    config = FunctionConfig(task_root=task_root, handler="probe.handler")
    lines: list[str] = []
    with function_session(config, loop_client(), layer, sysroot=sysroot, log=lines.append) as (
        function,
        how,
    ):
        result = function.invoke(b"{}")
    assert result.ok, (result, lines)
    found = result.document()
    assert found["interpreter"] is True
    assert "qemu-aarch64-static" in found["wrapper"] and f"-L {sysroot}" in found["wrapper"]
    if os.geteuid() == 0:
        assert "/opt/python/bin/python3.11" in found["wrapper"]
        assert found["writable"] is False  # read-only, as on Lambda
        assert "layer at /opt (read-only bind mount" in how
    else:
        assert "relocated" in how


def test_choosing_the_runtime_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybuild.errors import PybuildError
    from pybuild.invoke import clients
    from pybuild.ui import Ui

    assert clients.choose_client("loop", "h.h", None, tmp_path, Ui()).name == "pybuild runtime loop"
    with pytest.raises(PybuildError, match="not an aws-lambda-ric package"):
        clients.choose_client("ric", "h.h", tmp_path, tmp_path, Ui())
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *args: None if name == "npm" else real_which(name, *args)
    )
    chosen = clients.choose_client("auto", "h.h", None, tmp_path, Ui(quiet=True))
    assert chosen.name == "pybuild runtime loop"  # npm missing: the loop, with a warning
    with pytest.raises(PybuildError, match="npm is not on PATH"):
        clients.choose_client("ric", "h.h", None, tmp_path, Ui())


def test_invoke_reports_a_missing_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pybuild.cli import main

    code = main(["invoke", str(tmp_path / "none.zip"), "--function", str(tmp_path)])
    assert code == 2 and "none.zip: no such file" in capsys.readouterr().err


def _layer_zip(path: Path, interpreter: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/bin/python3", b"")  # not python3.X: never taken
        archive.writestr("python/bin/python3.11", interpreter)
        archive.writestr("python/lib/python3.11/os.py", b"")
    return path


def _elf_header(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def test_the_layers_architecture_is_read_from_its_interpreter(tmp_path: Path) -> None:
    from pybuild.errors import PybuildError
    from pybuild.invoke.run import zip_interpreter_arch
    from pybuild.model.target import Arch

    arm = _layer_zip(tmp_path / "arm.zip", _elf_header(183))
    intel = _layer_zip(tmp_path / "intel.zip", _elf_header(62))
    assert zip_interpreter_arch(arm) is Arch.AARCH64
    assert zip_interpreter_arch(intel) is Arch.X86_64
    with pytest.raises(PybuildError, match=r"no python/bin/python3\.X for aarch64 or x86_64"):
        zip_interpreter_arch(_layer_zip(tmp_path / "script.zip", b"#!/bin/sh\n"))
    (tmp_path / "garbage.zip").write_bytes(b"not a zip")
    with pytest.raises(PybuildError, match=r"garbage\.zip: not a readable zip"):
        zip_interpreter_arch(tmp_path / "garbage.zip")


def test_a_layer_of_the_hosts_architecture_runs_without_qemu(
    task_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No sysroot is built (it needs the network) and --sysroot is not used for a layer the
    host runs itself."""
    import platform

    from pybuild.cli import main
    from pybuild.smoke import sysroot

    def no_sysroot(*args: object) -> Path:
        raise AssertionError("a sysroot was built for a native layer")

    monkeypatch.setattr(sysroot, "build_sysroot", no_sysroot)
    machines = {"x86_64": 62, "aarch64": 183}
    if platform.machine() not in machines:
        pytest.skip(f"no layer architecture for a {platform.machine()} host")
    native = _layer_zip(tmp_path / "native.zip", _elf_header(machines[platform.machine()]))
    command = ["invoke", str(native), "--function", str(task_root), "--handler", "index.echo"]
    command += ["--client", "loop", "-n", "1"]
    capsys.readouterr()
    assert main(command) == 0
    assert main([*command, "--sysroot", str(tmp_path / "no-such-sysroot")]) == 0
    out = capsys.readouterr().out
    assert out.count("REPORT RequestId") == 2 and "qemu" not in out, out


# --- the shipped handler on the reference layer ---------------------------------------------


@pytest.fixture(scope="module")
def reference_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference layer with Debian's Python (examples/debian12-arm64), built once."""
    from pybuild.cli import main

    directory = tmp_path_factory.mktemp("reference")
    example = REPO / "examples" / "debian12-arm64" / "layer.toml"
    assert main(["build", "-q", "--layer", str(example), "--out", str(directory / "dist")]) == 0
    return directory / "dist" / "litellm-debian12.zip"


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("kind", ["ric", "loop"])
def test_invoke_check_on_the_reference_layer(
    reference_zip: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("qemu-aarch64-static") is None and os.uname().machine != "aarch64":
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    _client(kind, "handler.handler")
    from pybuild.cli import main

    code = main(
        [
            "invoke",
            str(reference_zip),
            "--function",
            str(REPO / "integrations" / "node"),
            "--check",
            "-n",
            "3",
            "--client",
            kind,
            "--ric",
            str(RIC),
            "--timeout",
            "180",
        ]
    )
    output = capsys.readouterr()
    assert code == 0, output.out[-6000:] + output.err[-2000:]
    assert "invoke: all 4 checks passed" in output.out
    reports = [line for line in output.out.splitlines() if line.startswith("REPORT ")]
    assert len(reports) == 4 and "Init Duration" in reports[0]
    assert "layer at /opt (read-only bind mount" in output.err or os.geteuid() != 0


@pytest.mark.slow
@pytest.mark.network
def test_invoke_an_event_file(
    reference_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain invocation: the shipped handler's own error path, with no provider configured."""
    _client("loop", "handler.handler")
    from pybuild.cli import main

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"model": "openai/gpt-4o-mini", "messages": []}))
    handler = REPO / "integrations" / "node" / "handler.mjs"
    code = main(
        ["invoke", str(reference_zip), "--function", str(handler), "--event", str(event),
         "-n", "1", "--client", "loop", "--timeout", "180", "-q"]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0, output[-4000:]
    assert "REPORT" not in output  # -q: no function output
    assert '1: {"statusCode":' in output  # the handler answered, with its own error status
