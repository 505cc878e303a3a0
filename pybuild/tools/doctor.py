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

from pybuild.errors import PybuildError
from pybuild.model.layerfile import Layer
from pybuild.model.lockfile import read_lock
from pybuild.runtimes.compiler import emulator, host_arch, probe
from pybuild.runtimes.debian_archive import DEFAULT_MIRRORS
from pybuild.smoke.sysroot import RELEASE as SYSROOT_RELEASE
from pybuild.stages.fetch import DEBIAN_EXAMPLE
from pybuild.support.cache import Cache, Want
from pybuild.support.index import configured_indexes, project_files
from pybuild.support.net import RetryPolicy, TransientError, open_url

MIN_FREE_BYTES = 2_000_000_000  # a build needs the wheels, the runtime and a tree of ~300 MB


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: its name, whether it passed, what was found or what to do, and whether
    it is optional (an optional check never fails the command)."""

    name: str
    ok: bool
    detail: str
    optional: bool = False


def _compiler(layer: Layer, python: str | None) -> Finding:
    """Which CPython would compile the bytecode on this machine."""
    name = f"bytecode compiler (CPython {layer.target.python})"
    if python is not None:
        found = probe((python,))
        ok = found is not None and found[0] == "cpython" and layer.target.python.matches(found[1])
        shown = f"{found[0]} {found[1]}" if found else "nothing that runs"
        return Finding(name, ok, f"--python {python}: {shown} (not pinned by the lock)")
    try:
        lock = read_lock(layer.lock_path)
    except PybuildError as err:
        return Finding(name, False, f"{err}")
    host = host_arch()
    pinned = lock.compiler(host) if host is not None else None
    if pinned is not None:
        return Finding(
            name, True, f"pinned for this {host.value if host else '?'} host: {pinned.description}"
        )
    qemu = emulator(lock.target.arch)
    if qemu is not None:
        return Finding(name, True, f"none pinned for this host: the runtime runs under {qemu}")
    return Finding(
        name,
        False,
        f"none pinned for this {platform.machine()} host and no qemu-{lock.target.arch.value}-"
        "static to run the runtime's own: install qemu-user-static, or pass --python",
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
        from pybuild.smoke.sysroot import cached_sysroot

        built = cached_sysroot(cache.root)
        if built is not None:
            detail, ok = f"cached: {built}", True
        else:
            release = f"{DEFAULT_MIRRORS['debian']}/dists/{SYSROOT_RELEASE}/InRelease"
            try:
                with open_url(release) as response:
                    response.read(1)
                detail, ok = f"buildable from Debian's arm64 packages ({release})", True
            except (OSError, TransientError) as err:
                detail, ok = (
                    f"{release}: {err}; give --sysroot DIR (e.g. extracted from a Lambda base "
                    "image)",
                    False,
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
    """Whether the lock's runtime files are cached or their source answers."""
    name = "runtime cached or reachable"
    try:
        lock = read_lock(layer.lock_path)
    except PybuildError as err:
        return Finding(name, False, str(err))
    from pybuild.pipeline import mirrors_of
    from pybuild.stages.fetch import Artifact

    for file in lock.runtime.files:
        path, _ = cache.lookup(Want(file.filename, file.sha256, file.size))
        if path is not None:
            continue
        url = Artifact.for_file(file, "runtime", mirrors_of(layer, lock)).urls[0]
        try:
            with open_url(url) as response:
                response.read(1)
        except (OSError, TransientError) as err:
            return Finding(
                name,
                False,
                f"{url}: {err}; download {file.filename} elsewhere and pass --from DIR, or "
                f"--runtime-url; without GitHub, {DEBIAN_EXAMPLE} uses Debian's Python",
            )
    return Finding(name, True, lock.runtime.description)


def diagnose(
    layer: Layer, cache: Cache, *, python: str | None = None, index_url: str | None = None
) -> list[Finding]:
    """Every check for `layer` on this machine, in order: the bytecode compiler, emulation and the
    sysroot, Nix, the cache, the index and the runtime's files. The index, the runtime's files
    (unless cached) and Debian's archive (if no sysroot is cached) go over the network."""
    return [
        _compiler(layer, python),
        *_emulation(layer, cache),
        _nix(),
        _cache(cache),
        _index(index_url),
        _runtime(layer, cache),
    ]


def problems(findings: list[Finding]) -> list[Finding]:
    """The findings that fail the command: failed and not optional."""
    return [f for f in findings if not f.ok and not f.optional]
