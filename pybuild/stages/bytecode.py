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

``strip_docstrings`` names owners (``"runtime"``, distributions) whose modules are compiled
without docstrings: the source is parsed, the first statement of each module, class and function
body that is a string constant is removed, with the string statements right after it (which would
become the docstring; a ``pass`` takes their place where they were the whole body, on a line the
code object already has), and the tree is compiled. Every other node keeps its
line and columns, so tracebacks point where they did; ``__doc__`` is None. Unlike ``-OO``,
``assert`` statements stay, the ``.pyc`` keeps its normal name, and other owners' modules (a
function's own code above all) are untouched. Only for code that nothing reads the docstrings
of: ``pybuild prune-plan`` lists every read of ``__doc__`` in the layer.

The compiler runs isolated (`Compiler.run_script`) with an environment of exactly the variables
below. It reports its progress on stderr; it dies with pybuild.

Every ``.pyc`` is then checked to carry the runtime's magic number, read from the runtime's own
``importlib/_bootstrap_external.py``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import ConfigError, PybuildError
from pybuild.model.layerfile import BytecodeMode
from pybuild.model.tree import RUNTIME, EntryKind, Tree
from pybuild.runtimes.compiler import Compiler
from pybuild.ui import Ui

_MAGIC_SOURCE = re.compile(
    rb"MAGIC_NUMBER\s*=\s*\((\d+)\)\.to_bytes\(2,\s*'little'\)\s*\+\s*b'\\r\\n'"
)
_PROGRESS_EVERY = 200
RUNTIME_OWNER = str(RUNTIME)  # "runtime": the runtime's own modules, in strip_docstrings

# Runs under the pinned compiler. Reads a JSON job on stdin ("files": [source, dfile, strip]),
# writes a JSON result on stdout and "progress N" lines on stderr.
_WORKER = r"""
import ast, importlib.util, json, os, py_compile, sys
from importlib import _bootstrap_external as external
job = json.load(sys.stdin)
mode = {"unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
        "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
        "sourceless": py_compile.PycInvalidationMode.UNCHECKED_HASH}[job["mode"]]

def is_string(statement):
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))

def statements(node):
    # Every statement below `node`: classes and functions are statements, so only the bodies of
    # statements are walked, never an expression (most of a tree's nodes).
    yield node
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        for child in getattr(node, field, None) or ():
            if isinstance(child, ast.AST):
                yield from statements(child)

def without_docstrings(tree):
    # The docstring goes, and the string statements right after it (the next would become the
    # docstring; on their own they compile to nothing but a line number). A body that was
    # nothing else gets a `pass` where the code object's other instructions already are (a
    # function's first line, a class's or module's first string), so the line table gains no
    # line the original did not have.
    for node in list(statements(tree)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if not body or not is_string(body[0]):
                continue
            first = body[0]
            while body and is_string(body[0]):
                del body[0]
            if body:
                continue
            where = first
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = node.decorator_list[0] if node.decorator_list else node
            body.append(ast.Pass(lineno=where.lineno, col_offset=where.col_offset,
                                 end_lineno=where.lineno, end_col_offset=where.col_offset))
    return tree

def compile_stripped(source, cfile, dfile):
    # py_compile.compile's steps, with the tree edited between parsing and compiling.
    with open(source, "rb") as handle:
        data = handle.read()
    try:
        tree = ast.parse(data, dfile)
        code = compile(without_docstrings(tree), dfile, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as err:
        raise py_compile.PyCompileError(type(err), err, dfile) from None
    checked = mode is py_compile.PycInvalidationMode.CHECKED_HASH
    pyc = external._code_to_hash_pyc(code, importlib.util.source_hash(data), checked)
    directory = os.path.dirname(cfile)
    if directory:
        os.makedirs(directory, exist_ok=True)
    external._write_atomic(cfile, pyc, external._calc_mode(source))

failed = []
for number, (source, dfile, strip) in enumerate(job["files"], 1):
    if job["mode"] == "sourceless":
        cfile = source + "c"
    else:
        cfile = importlib.util.cache_from_source(source)
    try:
        if strip:
            compile_stripped(source, cfile, dfile)
        else:
            py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True,
                               invalidation_mode=mode)
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
    """What the bytecode stage did: its compiler, mode and `debug_ranges` (whether PEP 657 column
    positions were kept), how many modules were compiled, those that failed (layer-relative path,
    error: shipped as source only), the runtime's magic number (hex) and how many modules were
    compiled without docstrings."""

    compiler: Compiler
    mode: BytecodeMode
    debug_ranges: bool
    compiled: int
    failed: tuple[tuple[str, str], ...]  # (path, reason): kept as source only
    magic: str
    without_docstrings: int = 0  # modules compiled without their docstrings


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


def strip_owners(names: Collection[str], distributions: Collection[str]) -> frozenset[str]:
    """`[bytecode] strip_docstrings`, checked against the layer's distributions."""
    unknown = sorted(set(names) - {RUNTIME_OWNER, *distributions})
    if unknown:
        raise ConfigError(
            f'[bytecode] strip_docstrings: {", ".join(unknown)}: not "{RUNTIME_OWNER}" nor a '
            f"distribution of this layer (known: {', '.join(sorted(distributions))})"
        )
    return frozenset(names)


def compile_tree(
    tree: Tree,
    mode: BytecodeMode,
    compiler: Compiler,
    *,
    work: Path,
    ui: Ui,
    debug_ranges: bool = True,
    strip_docstrings: Collection[str] = frozenset(),
) -> BytecodeResult:
    """Compile every .py of the tree in place; record the .pyc files in the inventory.

    Without `debug_ranges` the code objects carry line numbers but not the column positions of
    PEP 657 (as under ``-X no_debug_ranges``): tracebacks lose their ``^^^`` markers, the
    bytecode a quarter of its size. Modules whose owner (`str(Owner)`: ``runtime`` or the
    distribution) is in `strip_docstrings` are compiled without docstrings.
    """
    magic = runtime_magic(tree)
    sources = [p for p, e in tree.files() if p.endswith(".py") and e.kind is EntryKind.FILE]
    suffix = "c" if mode is BytecodeMode.SOURCELESS else ""
    stripped = {p for p in sources if str(tree.owner(p)) in strip_docstrings}
    job = {
        "mode": mode.value,
        # co_filename: where the code lives under /opt. Sourceless, that is the .pyc itself:
        # code that looks for its own file (python-dotenv's find_dotenv walks the stack and
        # asserts that some frame's file exists) must find one.
        "files": [
            [str(tree.root / p), tree.layout.mounted(p) + suffix, p in stripped] for p in sources
        ],
    }
    result = compiler.run_script(
        _WORKER,
        job,
        env=compiler_environment(debug_ranges),
        work=work,
        ui=ui,
        steps=(f"compiling {len(sources):,} modules ({compiler.how})", len(sources)),
        what="the bytecode compiler",
    )
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
        compiler,
        mode,
        debug_ranges,
        compiled,
        tuple(sorted(failed.items())),
        magic.hex(),
        without_docstrings=len(stripped - set(failed)),
    )
