"""The bytecode stage: every ``.py`` of the layer compiled ahead of time, as Lambda cannot.

``/opt`` is read-only on Lambda, so a layer without bytecode recompiles every module it imports at
every cold start. pybuild compiles the stdlib and site-packages with a host CPython of the
runtime's minor version (same magic number, same cache tag), serially in sorted order, with
``PYTHONHASHSEED=0`` (marshal writes frozenset constants in hash order), PEP 552 hash-based
``.pyc`` (no mtimes) and ``co_filename`` set to the file's path under ``/opt``. Modes:

- ``unchecked-hash`` (default): ``__pycache__/*.pyc`` beside the sources, never re-validated;
- ``checked-hash``: the same, re-validated against the source hash at every import;
- ``sourceless``: ``module.pyc`` in place of ``module.py`` (smaller; tracebacks show no source;
  ``co_filename`` is the ``.pyc``, the file that exists).

``debug_ranges = false`` leaves out PEP 657's column positions (a quarter of the bytecode).

Every ``.pyc`` is then checked to carry the runtime's magic number, read from the runtime's own
``importlib/_bootstrap_external.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.stages.assemble import LAYER_MOUNT, Tree

_MAGIC_SOURCE = re.compile(
    rb"MAGIC_NUMBER\s*=\s*\((\d+)\)\.to_bytes\(2,\s*'little'\)\s*\+\s*b'\\r\\n'"
)

# Runs under the compiling interpreter (any CPython of the runtime's minor version), with -S so
# that no site-packages of the host leaks in. Reads a JSON job on stdin, writes a JSON result.
_WORKER = r"""
import importlib.util, json, py_compile, sys
job = json.load(sys.stdin)
mode = {"unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
        "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
        "sourceless": py_compile.PycInvalidationMode.UNCHECKED_HASH}[job["mode"]]
failed = []
for source, dfile in job["files"]:
    if job["mode"] == "sourceless":
        cfile = source + "c"
    else:
        cfile = importlib.util.cache_from_source(source)
    try:
        py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError as err:
        failed.append([source, err.exc_type_name + ": " + str(err.exc_value).splitlines()[0]])
json.dump({"failed": failed, "magic": importlib.util.MAGIC_NUMBER.hex(),
           "version": sys.version.split()[0],
           "cache_tag": sys.implementation.cache_tag}, sys.stdout)
"""


class BytecodeError(PybuildError):
    """Bytecode cannot be produced or is not what the runtime loads."""


@dataclass(frozen=True, slots=True)
class Compiler:
    executable: str
    version: str  # e.g. "3.11.7"


@dataclass(frozen=True, slots=True)
class BytecodeResult:
    compiler: Compiler
    mode: str
    debug_ranges: bool
    compiled: int
    failed: tuple[tuple[str, str], ...]  # (path, reason): kept as source only
    magic: str


def _probe(executable: str) -> tuple[str, str] | None:
    """(implementation, version) of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [
                executable,
                "-S",
                "-c",
                "import sys; print(sys.implementation.name, sys.version.split()[0])",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out[0], out[1]) if len(out) == 2 else None


def find_compiler(minor: tuple[int, int], explicit: str | None = None) -> Compiler:
    """A host CPython of the runtime's minor version: `explicit`, this one, or pythonX.Y."""
    wanted = f"{minor[0]}.{minor[1]}"
    candidates = [explicit] if explicit else [sys.executable, shutil.which(f"python{wanted}")]
    for candidate in candidates:
        if not candidate:
            continue
        probe = _probe(candidate)
        if probe and probe[0] == "cpython" and probe[1].startswith(f"{wanted}."):
            return Compiler(candidate, probe[1])
        if explicit:
            found = f"{probe[0]} {probe[1]}" if probe else "nothing that runs"
            raise BytecodeError(f"--python {explicit}: expected CPython {wanted}, found {found}")
    raise BytecodeError(
        f"bytecode needs a CPython {wanted} (the runtime's minor version) on this "
        f"machine; none found (tried this interpreter and python{wanted} on "
        f"PATH); install one or pass --python PATH"
    )


def runtime_magic(tree: Tree) -> bytes:
    """The magic number the runtime's own importlib expects."""
    source = tree.root / "python" / "lib" / tree.python / "importlib" / "_bootstrap_external.py"
    try:
        match = _MAGIC_SOURCE.search(source.read_bytes())
    except OSError as err:
        raise BytecodeError(f"cannot read the runtime's importlib ({err})") from None
    if match is None:
        raise BytecodeError(f"{source.name}: no MAGIC_NUMBER found in the runtime's importlib")
    return int(match[1]).to_bytes(2, "little") + b"\r\n"


def compile_tree(
    tree: Tree,
    mode: str,
    compiler: Compiler,
    *,
    debug_ranges: bool = True,
) -> BytecodeResult:
    """Compile every .py of the tree in place; record the .pyc files' owners.

    Without `debug_ranges` the code objects carry line numbers but not the column positions of
    PEP 657 (as under ``-X no_debug_ranges``): tracebacks lose their ``^^^`` markers, the
    bytecode a quarter of its size.
    """
    magic = runtime_magic(tree)
    sources = [p for p in tree.files() if p.endswith(".py") and not (tree.root / p).is_symlink()]
    job = {
        "mode": mode,
        # co_filename: where the code lives under /opt. Sourceless, that is the .pyc itself:
        # code that looks for its own file (python-dotenv's find_dotenv walks the stack and
        # asserts that some frame's file exists) must find one.
        "files": [
            [str(tree.root / p), f"{LAYER_MOUNT}/{p}{'c' if mode == 'sourceless' else ''}"]
            for p in sources
        ],
    }
    completed = subprocess.run(
        [compiler.executable, "-S", "-c", _WORKER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env={
            "PYTHONHASHSEED": "0",
            "PYTHONUTF8": "1",
            **({} if debug_ranges else {"PYTHONNODEBUGRANGES": "1"}),
        },
        check=False,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise BytecodeError(f"the bytecode compiler ({compiler.executable}) failed: {last}")
    result = json.loads(completed.stdout)
    if bytes.fromhex(result["magic"]) != magic:
        raise BytecodeError(
            f"{compiler.executable} writes magic {result['magic']}, the runtime "
            f"expects {magic.hex()}"
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
        owner = tree.owners.get(source, "runtime")
        if mode == "sourceless":
            pyc = f"{source}c"
            (tree.root / source).unlink()
            tree.owners.pop(source, None)
        else:
            directory, _, name = source.rpartition("/")
            pyc = f"{directory}/__pycache__/{name[:-3]}.{cache_tag}.pyc"
        tree.owners[pyc] = owner
    check_magic(tree, magic)
    return BytecodeResult(
        compiler, mode, debug_ranges, compiled, tuple(sorted(failed.items())), magic.hex()
    )


def check_magic(tree: Tree, magic: bytes) -> None:
    """Every .pyc in the tree must carry the runtime's magic number."""
    wrong = []
    for path in tree.files():
        if path.endswith(".pyc"):
            with (tree.root / path).open("rb") as handle:
                if handle.read(4) != magic:
                    wrong.append(path)
    if wrong:
        raise BytecodeError(
            f"{len(wrong)} .pyc files do not carry the runtime's magic number "
            f"{magic.hex()}: {', '.join(wrong[:5])}"
        )
