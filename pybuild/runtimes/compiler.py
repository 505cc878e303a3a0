"""The bytecode compiler: a pinned CPython, never the one that happens to run pybuild.

The lock pins, for each build-host architecture, the runtime's own CPython (same version, same
release, same provider). `select_compiler` unpacks the one for this host into the cache
(``compilers/<sha256 of its files>``, published by a rename) and runs it natively; where none is
pinned for this host, it runs the target runtime's interpreter under ``qemu-<arch>-static`` with a
sysroot: slower, the same bytes. ``--pinned-compiler PATH`` hands over the lock's pinned compiler
for this host, unpacked by other means (Nix fetches the same files and patches a copy's ELF
interpreter): it must run as exactly the pinned CPython version, and the build is then a pinned
build like any other. ``--python PATH`` remains as an escape hatch: the report and the SBOM then
say "compiler not pinned".
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.errors import PybuildError
from pybuild.model.lockfile import Lock, LockedRuntime
from pybuild.model.target import Arch
from pybuild.runtimes import provider
from pybuild.support import proc
from pybuild.support.cache import Cache
from pybuild.support.fsutil import WorkDir, reclaim_stale
from pybuild.ui import Ui

_PROBE = "import sys; print(sys.implementation.name, sys.version.split()[0])"


class CompilerError(PybuildError):
    """No CPython that may compile the layer's bytecode can be run, or a script it ran failed."""


@dataclass(frozen=True, slots=True)
class Compiler:
    """How to run the CPython that compiles the layer's bytecode."""

    command: tuple[str, ...]  # argv up to and including the interpreter
    version: str  # "3.11.15"
    pinned: LockedRuntime | None  # None: --python, not pinned by the lock
    how: str  # "native", "qemu-aarch64-static (...)", "--pinned-compiler" or "--python"

    def describe(self) -> str:
        """One line for the report and error messages: the version and the pinned files with `how`,
        or for ``--python`` the interpreter and "compiler not pinned"."""
        if self.pinned is None:
            return f"CPython {self.version} from --python {self.command[-1]} (compiler not pinned)"
        files = ", ".join(f.filename for f in self.pinned.files)
        return f"CPython {self.version}, pinned ({files}), {self.how}"

    def run_script(
        self,
        script: str,
        job: object,
        *,
        env: Mapping[str, str],
        work: Path,
        ui: Ui,
        steps: tuple[str, int],
        what: str,
    ) -> Any:
        """Run `script` under this CPython with `job` as JSON on stdin; its JSON stdout.

        Isolated: ``-S`` (no site), ``-s`` (no user site-packages), ``-P`` (nothing from the
        working directory, an empty directory under `work`), and exactly `env` as its
        environment (so no ``PYTHONPATH`` or other ``PYTHON*`` variable of the user reaches it).
        Not ``-I``: it also ignores ``PYTHONHASHSEED``, which reproducible bytecode needs. Its
        ``progress N`` lines on stderr advance a progress bar (`steps`: what, how many); it dies
        with pybuild. `what` names it in errors.
        """
        with WorkDir(work, "script-") as empty, ui.steps(*steps) as step:

            def progress(line: str) -> None:
                if line.startswith("progress "):
                    step(int(line.split()[1]))

            return self._run(script, job, env=env, cwd=empty, what=what, progress=progress)

    def _run(
        self,
        script: str,
        job: object,
        *,
        env: Mapping[str, str],
        cwd: Path,
        what: str,
        progress: Callable[[str], None],
    ) -> Any:
        try:
            completed = proc.run(
                [*self.command, "-S", "-s", "-P", "-c", script],
                input_text=json.dumps(job),
                env=env,
                cwd=cwd,
                on_stderr_line=progress,
            )
        except OSError as err:
            raise CompilerError(f"cannot run {what}: {err}") from None
        except subprocess.SubprocessError as err:
            raise CompilerError(f"{what} failed: {err}") from None
        if completed.returncode != 0:
            lines = [
                ln for ln in completed.stderr.strip().splitlines() if not ln.startswith("progress")
            ]
            raise CompilerError(
                f"{what} ({self.describe()}) failed: {(lines or ['no output'])[-1]}"
            )
        return json.loads(completed.stdout)


def host_arch() -> Arch | None:
    """This machine's architecture, if Lambda has it."""
    try:
        return Arch(platform.machine())
    except ValueError:
        return None


def probe(command: tuple[str, ...]) -> tuple[str, str] | None:
    """(implementation, version) of an interpreter, or None if it does not run."""
    try:
        completed = proc.run([*command, "-S", "-P", "-c", _PROBE], env={}, cwd="/", timeout=300)
    except (OSError, TimeoutError, PybuildError):
        return None
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired and the like
        return None
    out = completed.stdout.split()
    return (out[0], out[1]) if completed.returncode == 0 and len(out) == 2 else None


def _unpacked(runtime: LockedRuntime, files: Mapping[str, Path], cache: Cache) -> Path:
    """The runtime's files unpacked once into the cache; its interpreter."""
    key = hashlib.sha256(
        "\n".join(sorted(f"{f.filename} {f.sha256}" for f in runtime.files)).encode()
    ).hexdigest()
    parent = cache.root / "compilers"
    final = parent / key
    marker = final / ".pybuild-interpreter"
    if marker.is_file():
        return final / marker.read_text(encoding="utf-8").strip()
    reclaim_stale(parent, prefix=".unpack-")
    work = WorkDir(parent, ".unpack-")
    try:
        tree = work.path / "tree"
        interpreter = provider(runtime.provider).unpack_compiler(runtime, files, tree)
        (tree / ".pybuild-interpreter").write_text(
            interpreter.relative_to(tree).as_posix() + "\n", encoding="utf-8"
        )
        try:
            tree.rename(final)
        except OSError:
            if not marker.is_file():
                raise
    finally:
        work.cleanup()
    return final / marker.read_text(encoding="utf-8").strip()


def _checked(command: tuple[str, ...], runtime: LockedRuntime, how: str) -> Compiler:
    found = probe(command)
    if found != ("cpython", runtime.python_version):
        shown = f"{found[0]} {found[1]}" if found else "nothing that runs"
        raise CompilerError(
            f"the pinned compiler ({runtime.description}) should be CPython "
            f"{runtime.python_version} but runs as {shown} ({how})"
        )
    return Compiler(command, runtime.python_version, runtime, how)


def handed_over(lock: Lock, interpreter: str) -> Compiler:
    """`--pinned-compiler`: the lock's pinned compiler for this host, unpacked by other means (for
    example a copy whose ELF interpreter Nix patched). It must run as exactly the pinned CPython
    version; it is then that compiler, for the report and the SBOM as for the zip."""
    host = host_arch()
    pinned = lock.compiler(host) if host is not None else None
    if pinned is None:
        raise CompilerError(
            f"--pinned-compiler {interpreter}: the lock pins no bytecode compiler for this "
            f"{platform.machine()} host"
        )
    found = probe((interpreter,))
    if found != ("cpython", pinned.python_version):
        shown = f"{found[0]} {found[1]}" if found else "nothing that runs"
        raise CompilerError(
            f"--pinned-compiler {interpreter}: runs as {shown}, but the lock pins CPython "
            f"{pinned.python_version} for {host} hosts ({pinned.description})"
        )
    return Compiler((interpreter,), pinned.python_version, pinned, "--pinned-compiler")


def emulator(arch: Arch) -> str | None:
    """The qemu user-mode emulator for `arch` on PATH: ``qemu-<arch>-static``, else ``qemu-<arch>``;
    None if there is neither."""
    return shutil.which(f"qemu-{arch.value}-static") or shutil.which(f"qemu-{arch.value}")


def select_compiler(
    lock: Lock,
    files: Mapping[str, Path],
    cache: Cache,
    ui: Ui,
    *,
    python: str | None = None,
    pinned_compiler: str | None = None,
    emulate: bool = False,
    sysroot: Path | None = None,
) -> Compiler:
    """The compiler for this build: `python` (not pinned), `pinned_compiler` (the lock's for this
    host, unpacked elsewhere), the lock's for this host, or the target runtime under qemu
    (`emulate`, or no pinned compiler for this host)."""
    minor = str(lock.target.python)
    if pinned_compiler is not None:
        return handed_over(lock, pinned_compiler)
    if python is not None:
        found = probe((python,))
        if found is None or found[0] != "cpython" or not found[1].startswith(f"{minor}."):
            shown = f"{found[0]} {found[1]}" if found else "nothing that runs"
            raise CompilerError(f"--python {python}: expected CPython {minor}, found {shown}")
        return Compiler((python,), found[1], None, "--python")
    host = host_arch()
    pinned = lock.compiler(host) if host is not None else None
    if pinned is not None and not emulate:
        if any(f.sha256 not in files for f in pinned.files):
            raise CompilerError(f"the pinned compiler for {host} hosts was not fetched")
        return _checked((str(_unpacked(pinned, files, cache)),), pinned, "native")
    target = lock.target.arch
    qemu = emulator(target)
    if qemu is None:
        raise CompilerError(
            f"no bytecode compiler is pinned for this {platform.machine()} host, and running "
            f"the {target.value} runtime needs qemu-{target.value}-static (Debian: "
            "qemu-user-static); or pass --python PATH (a CPython "
            f"{minor}; the zip then depends on its exact version)"
        )
    if sysroot is None:
        if target is not Arch.AARCH64:
            raise CompilerError(f"no sysroot to emulate the {target.value} runtime; pass --sysroot")
        from pybuild.smoke.sysroot import build_sysroot

        sysroot = build_sysroot(cache.root, ui)
    interpreter = _unpacked(lock.runtime, files, cache)
    how = f"{Path(qemu).name} (the target runtime, emulated)"
    return _checked((qemu, "-L", str(sysroot), str(interpreter)), lock.runtime, how)
