"""Put a function together with a layer: the layer zip unpacked and shown at /opt, the Node.js
runtime client started in that view, and the layer's Python reachable through PYBUILD_PYTHON.

The layer is shown at /opt by `pybuild.smoke.runner.Runner`, as `pybuild smoke` does: read-only
in a private mount namespace as root, else relocated (and said so). Where the host cannot run the
layer's architecture, its interpreter runs under qemu with a sysroot: the Node.js client starts
Python from PYBUILD_PYTHON, which then names a script in the session's temporary directory that
runs ``qemu-<arch>-static -L SYSROOT /opt/python/bin/python3.X "$@"``.
"""

from __future__ import annotations

import platform
import re
import shlex
import subprocess
import tempfile
import zipfile
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


def _machine(header: bytes) -> Arch | None:
    machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else 0
    return _MACHINES.get(machine)


def layer_interpreter(root: Path) -> tuple[Arch, str]:
    """The architecture and name ("python3.11") of the interpreter in an unpacked layer."""
    for path in sorted((root / "python" / "bin").glob("python3.*")):
        if re.fullmatch(r"python3\.\d+", path.name) and path.is_file():
            with path.open("rb") as file:
                arch = _machine(file.read(20))
            if arch is not None:
                return arch, path.name
    raise PybuildError(f"the layer has no python/bin/python3.X for aarch64 or x86_64 ({root})")


def zip_interpreter_arch(layer_zip: Path) -> Arch:
    """The architecture of the interpreter in a layer zip, read without extracting anything."""
    try:
        with zipfile.ZipFile(layer_zip) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if re.fullmatch(r"python/bin/python3\.\d+", info.filename):
                    with archive.open(info) as member:
                        arch = _machine(member.read(20))
                    if arch is not None:
                        return arch
    except (OSError, zipfile.BadZipFile) as err:
        raise PybuildError(f"{layer_zip}: not a readable zip ({err})") from err
    raise PybuildError(f"{layer_zip}: no python/bin/python3.X for aarch64 or x86_64")


def needs_emulation(arch: Arch) -> bool:
    """Whether code for `arch` runs under qemu on this machine."""
    return platform.machine() != arch.value


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
            emulated = sysroot if needs_emulation(arch) else None
            runner = Runner(opt, SmokeSpec(arch=arch, python=python, sysroot=emulated))
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
