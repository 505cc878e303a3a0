"""`pybuild doctor`: is this machine ready to lock, build and smoke-test the layer?

One line per check, pass or fail, and what to do about a failure. Optional checks (Nix) never
fail the command.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from pybuild.model.layerfile import Layer
from pybuild.stages.bytecode import BytecodeError, find_compiler
from pybuild.support.cache import Cache, Want
from pybuild.support.index import configured_indexes, project_files
from pybuild.support.net import RetryPolicy, TransientError, open_url

MIN_FREE_BYTES = 2_000_000_000  # a build needs the wheels, the runtime and a tree of ~300 MB


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    optional: bool = False


def _compiler(layer: Layer, python: str | None) -> Finding:
    wanted = layer.target.python_str
    try:
        compiler = find_compiler(layer.target.python, python)
    except BytecodeError as err:
        return Finding(f"CPython {wanted} for bytecode", False, str(err))
    return Finding(
        f"CPython {wanted} for bytecode", True, f"{compiler.executable} ({compiler.version})"
    )


def _emulation(layer: Layer, cache: Cache) -> list[Finding]:
    host, arch = platform.machine(), layer.target.arch.value
    if host == arch:
        return [Finding("smoke test runs natively", True, f"{host} host, {arch} target")]
    qemu = shutil.which(f"qemu-{arch}-static") or shutil.which(f"qemu-{arch}")
    findings = [
        Finding(
            f"qemu user mode for {arch} on this {host} host",
            qemu is not None,
            qemu or "install it (Debian: apt-get install qemu-user-static)",
        )
    ]
    if arch == "aarch64":
        built = sorted((cache.root / "sysroot").glob("*/lib/ld-linux-aarch64.so.1"))
        foreign = (
            subprocess.run(
                ["dpkg", "--print-foreign-architectures"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if shutil.which("dpkg")
            else []
        )
        ok = bool(built) or "arm64" in foreign
        detail = (
            f"cached: {built[-1].parent.parent}"
            if built
            else "buildable from Debian's arm64 packages"
            if ok
            else "give --sysroot DIR (e.g. extracted from a Lambda base image), or on Debian: "
            "dpkg --add-architecture arm64 && apt-get update"
        )
        findings.append(Finding("arm64 sysroot for the smoke test", ok, detail))
    return findings


def _nix() -> Finding:
    nix = shutil.which("nix")
    if nix is None:
        return Finding(
            "nix (optional)", False, "not installed: `nix build .#layer` needs it", optional=True
        )
    version = subprocess.run(
        [nix, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return Finding("nix (optional)", True, version, optional=True)


def _cache(cache: Cache) -> Finding:
    try:
        cache.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.root, prefix=".doctor."):
            pass
    except OSError as err:
        return Finding(
            "cache directory writable",
            False,
            f"{cache.root}: {err}; set PYBUILD_CACHE_DIR to a writable directory",
        )
    free = shutil.disk_usage(cache.root).free
    if free < MIN_FREE_BYTES:
        return Finding(
            "cache directory writable, with free space",
            False,
            f"{cache.root}: only {free / 1e9:.1f} GB free (need {MIN_FREE_BYTES / 1e9:.0f} GB)",
        )
    return Finding(
        "cache directory writable, with free space",
        True,
        f"{cache.root} ({free / 1e9:.0f} GB free)",
    )


def _index(index_url: str | None) -> Finding:
    indexes = configured_indexes(index_url)
    try:
        project_files(indexes.primary, "pip", RetryPolicy(attempts=1))
    except (OSError, TransientError, ValueError) as err:
        return Finding(
            "package index reachable",
            False,
            f"{indexes.primary} ({indexes.source}): {err}; set PIP_INDEX_URL or "
            "--index-url to a reachable mirror",
        )
    return Finding("package index reachable", True, f"{indexes.primary} ({indexes.source})")


def _runtime(layer: Layer, cache: Cache) -> Finding:
    runtime = layer.runtime
    path, _ = cache.lookup(Want(runtime.filename, runtime.sha256, runtime.size))
    if path is not None:
        return Finding("runtime cached or reachable", True, f"cached: {path}")
    try:
        with open_url(runtime.url) as response:
            response.read(1)
    except (OSError, TransientError) as err:
        return Finding(
            "runtime cached or reachable",
            False,
            f"{runtime.url}: {err}; download {runtime.filename} elsewhere and run "
            "`pybuild fetch --from DIR`, or pass --runtime-url",
        )
    return Finding("runtime cached or reachable", True, runtime.url)


def diagnose(
    layer: Layer, cache: Cache, *, python: str | None = None, index_url: str | None = None
) -> list[Finding]:
    return [
        _compiler(layer, python),
        *_emulation(layer, cache),
        _nix(),
        _cache(cache),
        _index(index_url),
        _runtime(layer, cache),
    ]


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.ok and not f.optional]
