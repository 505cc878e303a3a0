"""Put a function together with a layer: the layer zip unpacked and shown at /opt, the Node.js
runtime client started in that view, and the layer's Python reachable through PYBUILD_PYTHON.

The layer is shown at /opt by `pybuild.smoke.runner.Runner`, as `pybuild smoke` does: read-only
in a private mount namespace as root, else relocated (and said so). Where the host cannot run the
layer's architecture, its interpreter runs under qemu with a sysroot: the Node.js client starts
Python from PYBUILD_PYTHON, which then names a script in the session's temporary directory that
runs ``qemu-<arch>-static -L SYSROOT /opt/python/bin/python3.X "$@"``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.invoke.clients import RuntimeClient, node_executable
from pybuild.invoke.environment import FunctionConfig, Launch
from pybuild.invoke.lifecycle import LambdaFunction
from pybuild.model.target import Arch
from pybuild.smoke.runner import Runner, SmokeSpec
from pybuild.support.extract import TreeWriter, extract_zip

_MACHINES = {183: Arch.AARCH64, 62: Arch.X86_64}  # ELF e_machine


def layer_interpreter(root: Path) -> tuple[Arch, str]:
    """The architecture and name ("python3.11") of the interpreter in an unpacked layer."""
    for path in sorted((root / "python" / "bin").glob("python3.*")):
        if re.fullmatch(r"python3\.\d+", path.name) and path.is_file():
            header = path.read_bytes()[:20]
            machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else 0
            if machine in _MACHINES:
                return _MACHINES[machine], path.name
    raise PybuildError(f"the layer has no python/bin/python3.X for aarch64 or x86_64 ({root})")


@contextmanager
def function_session(
    config: FunctionConfig,
    client: RuntimeClient,
    layer_zip: Path | None,
    *,
    sysroot: Path | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[tuple[LambdaFunction, str]]:
    """A `LambdaFunction` whose runtime sees `layer_zip` at /opt; and how it runs, in words."""
    with tempfile.TemporaryDirectory(prefix="pybuild-invoke-") as tmp:
        node = node_executable()
        argv = [node, *client.argv]
        env: dict[str, str] = {}
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
        runs = f"{client.name} on the host's Node.js {version.stdout.strip()}"
        how = f"{runs}, no layer"
        if layer_zip is not None:
            opt = Path(tmp) / "opt"
            extract_zip(layer_zip, TreeWriter(opt, str(layer_zip)))
            arch, python = layer_interpreter(opt)
            runner = Runner(opt, SmokeSpec(arch=arch, python=python, sysroot=sysroot))
            if runner.prefix or not runner.at_opt:
                wrapper = Path(tmp) / "bin" / python
                wrapper.parent.mkdir()
                command = shlex.join([*runner.prefix, runner.interpreter])
                wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
                wrapper.chmod(0o755)
                env["PYBUILD_PYTHON"] = str(wrapper)
            else:  # as the deployment files set it
                env["PYBUILD_PYTHON"] = runner.interpreter
            argv = runner.in_layer(argv)
            how = f"{runs}, {runner.how}"
        function = LambdaFunction(config, Launch(tuple(argv), env), log)
        try:
            yield function, how
        finally:
            function.close()
