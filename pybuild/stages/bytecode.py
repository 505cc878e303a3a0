"""The bytecode stage: every ``.py`` of the layer compiled ahead of time, as Lambda cannot.

``/opt`` is read-only on Lambda, so a layer without bytecode recompiles every module it imports at
every cold start. pybuild compiles the stdlib and site-packages with the compiler the lock pins
(`pybuild.runtimes.compiler`: the runtime's own CPython, for this build host), serially in sorted
order, with ``PYTHONHASHSEED=0`` (marshal writes frozenset constants in hash order), PEP 552
hash-based ``.pyc`` (no mtimes) and ``co_filename`` set to the file's path under ``/opt``. Modes:

- ``unchecked-hash`` (default): ``__pycache__/*.pyc`` beside the sources, never re-validated;
- ``checked-hash``: the same, re-validated against the source hash at every import;
- ``sourceless``: ``module.pyc`` in place of ``module.py`` (smaller; tracebacks show no source;
  ``co_filename`` is the ``.pyc``, the file that exists).

``debug_ranges = false`` leaves out PEP 657's column positions (a quarter of the bytecode).

The compiler runs isolated: ``-S`` (no site), ``-s`` (no user site-packages), ``-P`` (nothing from
the working directory, which is an empty directory anyway), an environment of exactly the
variables below (so no ``PYTHONPATH`` or other ``PYTHON*`` variable of the user reaches it). Not
``-I``: it also ignores ``PYTHONHASHSEED``, which reproducible bytecode needs. It reports its
progress on stderr; it dies with pybuild.

Every ``.pyc`` is then checked to carry the runtime's magic number, read from the runtime's own
``importlib/_bootstrap_external.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.model.layerfile import BytecodeMode
from pybuild.model.tree import EntryKind, Tree
from pybuild.runtimes.compiler import Compiler
from pybuild.support import proc
from pybuild.support.fsutil import WorkDir
from pybuild.ui import Ui

_MAGIC_SOURCE = re.compile(
    rb"MAGIC_NUMBER\s*=\s*\((\d+)\)\.to_bytes\(2,\s*'little'\)\s*\+\s*b'\\r\\n'"
)
_PROGRESS_EVERY = 200

# Runs under the pinned compiler. Reads a JSON job on stdin, writes a JSON result on stdout and
# "progress N" lines on stderr.
_WORKER = r"""
import importlib.util, json, py_compile, sys
job = json.load(sys.stdin)
mode = {"unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
        "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
        "sourceless": py_compile.PycInvalidationMode.UNCHECKED_HASH}[job["mode"]]
failed = []
for number, (source, dfile) in enumerate(job["files"], 1):
    if job["mode"] == "sourceless":
        cfile = source + "c"
    else:
        cfile = importlib.util.cache_from_source(source)
    try:
        py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError as err:
        failed.append([source, err.exc_type_name + ": " + str(err.exc_value).splitlines()[0]])
    if number % EVERY == 0:
        print("progress", number, file=sys.stderr, flush=True)
json.dump({"failed": failed, "magic": importlib.util.MAGIC_NUMBER.hex(),
           "version": sys.version.split()[0],
           "cache_tag": sys.implementation.cache_tag}, sys.stdout)
""".replace("EVERY", str(_PROGRESS_EVERY))


class BytecodeError(PybuildError):
    """Bytecode cannot be produced or is not what the runtime loads."""


@dataclass(frozen=True, slots=True)
class BytecodeResult:
    compiler: Compiler
    mode: BytecodeMode
    debug_ranges: bool
    compiled: int
    failed: tuple[tuple[str, str], ...]  # (path, reason): kept as source only
    magic: str


def runtime_magic(tree: Tree) -> bytes:
    """The magic number the runtime's own importlib expects."""
    source = tree.root / tree.layout.stdlib / "importlib" / "_bootstrap_external.py"
    try:
        match = _MAGIC_SOURCE.search(source.read_bytes())
    except OSError as err:
        raise BytecodeError(f"cannot read the runtime's importlib ({err})") from None
    if match is None:
        raise BytecodeError(f"{source.name}: no MAGIC_NUMBER found in the runtime's importlib")
    return int(match[1]).to_bytes(2, "little") + b"\r\n"


def compiler_environment(debug_ranges: bool) -> dict[str, str]:
    """Exactly the environment the compiler runs with."""
    env = {"PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "LC_ALL": "C.UTF-8"}
    if not debug_ranges:
        env["PYTHONNODEBUGRANGES"] = "1"
    return env


def compile_tree(
    tree: Tree,
    mode: BytecodeMode,
    compiler: Compiler,
    *,
    work: Path,
    ui: Ui,
    debug_ranges: bool = True,
) -> BytecodeResult:
    """Compile every .py of the tree in place; record the .pyc files in the inventory.

    Without `debug_ranges` the code objects carry line numbers but not the column positions of
    PEP 657 (as under ``-X no_debug_ranges``): tracebacks lose their ``^^^`` markers, the
    bytecode a quarter of its size.
    """
    magic = runtime_magic(tree)
    sources = [p for p, e in tree.files() if p.endswith(".py") and e.kind is EntryKind.FILE]
    suffix = "c" if mode is BytecodeMode.SOURCELESS else ""
    job = {
        "mode": mode.value,
        # co_filename: where the code lives under /opt. Sourceless, that is the .pyc itself:
        # code that looks for its own file (python-dotenv's find_dotenv walks the stack and
        # asserts that some frame's file exists) must find one.
        "files": [[str(tree.root / p), tree.layout.mounted(p) + suffix] for p in sources],
    }
    with (
        WorkDir(work, "compile-") as empty,
        ui.steps(f"compiling {len(sources):,} modules ({compiler.how})", len(sources)) as step,
    ):

        def progress(line: str) -> None:
            if line.startswith("progress "):
                step(int(line.split()[1]))

        try:
            completed = proc.run(
                [*compiler.command, "-S", "-s", "-P", "-c", _WORKER],
                input_text=json.dumps(job),
                env=compiler_environment(debug_ranges),
                cwd=empty,
                on_stderr_line=progress,
            )
        except OSError as err:
            raise BytecodeError(f"cannot run the bytecode compiler: {err}") from None
        except subprocess.SubprocessError as err:
            raise BytecodeError(f"the bytecode compiler failed: {err}") from None
    if completed.returncode != 0:
        lines = [
            ln for ln in completed.stderr.strip().splitlines() if not ln.startswith("progress")
        ]
        raise BytecodeError(
            f"the bytecode compiler ({compiler.describe()}) failed: {(lines or ['no output'])[-1]}"
        )
    result = json.loads(completed.stdout)
    if bytes.fromhex(result["magic"]) != magic:
        raise BytecodeError(
            f"{compiler.describe()} writes magic {result['magic']}, the runtime expects "
            f"{magic.hex()}"
        )
    failed = {
        Path(path).relative_to(tree.root).as_posix(): reason for path, reason in result["failed"]
    }
    cache_tag = result["cache_tag"]
    compiled = 0
    for source in sources:
        if source in failed:
            continue
        compiled += 1
        owner = tree.owner(source)
        if mode is BytecodeMode.SOURCELESS:
            pyc = f"{source}c"
            tree.remove(source)
        else:
            directory, _, name = source.rpartition("/")
            pyc = f"{directory}/__pycache__/{name[:-3]}.{cache_tag}.pyc"
        tree.record_path(pyc, owner)
        with (tree.root / pyc).open("rb") as handle:
            if handle.read(4) != magic:
                raise BytecodeError(
                    f"{pyc} does not carry the runtime's magic number {magic.hex()}"
                )
    return BytecodeResult(
        compiler, mode, debug_ranges, compiled, tuple(sorted(failed.items())), magic.hex()
    )
