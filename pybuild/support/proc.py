"""Child processes that die with pybuild.

Every long-running child (the bytecode compiler, uv, the smoke test's interpreter) is started
here: on Linux the kernel sends it SIGKILL when pybuild dies, whatever kills pybuild (Ctrl-C,
SIGTERM, SIGKILL), and an exception in pybuild (Ctrl-C included) kills it before propagating.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
    umask: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `command` to completion, capturing text stdout and stderr.

    `on_stderr_line` sees each line of stderr as it comes (progress), and it is kept too. Raises
    OSError when the command cannot start and `subprocess.TimeoutExpired` past `timeout`.
    """

    def prepare() -> None:  # pragma: no cover - runs in the child
        if umask is not None:
            os.umask(umask)
        if sys.platform.startswith("linux"):
            _die_with_parent()

    stderr_lines: list[str] = []
    stdout_parts: list[str] = []
    with subprocess.Popen(
        list(command),
        env=None if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=prepare,  # noqa: PLW1509 - no threads of ours run Python in the child
    ) as process:
        out, err = process.stdout, process.stderr
        assert out is not None and err is not None  # noqa: S101 - piped above

        def read_stderr() -> None:
            for line in err:
                stderr_lines.append(line)
                if on_stderr_line is not None:
                    on_stderr_line(line.rstrip("\n"))

        readers = [
            threading.Thread(target=read_stderr, daemon=True),
            threading.Thread(target=lambda: stdout_parts.append(out.read()), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            if input_text is not None and process.stdin is not None:
                try:
                    process.stdin.write(input_text)
                    process.stdin.close()
                except BrokenPipeError:
                    pass
            process.wait(timeout=timeout)
            for reader in readers:
                reader.join()
        except BaseException:
            process.kill()
            process.wait()
            raise
    return subprocess.CompletedProcess(
        list(command), process.returncode, "".join(stdout_parts), "".join(stderr_lines)
    )
