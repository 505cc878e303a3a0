"""The import graph of a layer: which module can import which, read from the code itself.

Every ``.py`` of the tree is parsed by the pinned compiler (`pybuild.runtimes.compiler`: the
layer's own CPython, so its grammar is the runtime's, not the host's) and each module's imports
are collected:

- ``import a.b`` and ``from a import b`` (``a.b`` counts when it is a module: ``from`` may name a
  submodule), relative imports resolved against the module's package, ``from a import *``
  through a literal ``__all__``; importing a module imports its packages;
- ``importlib.import_module``, ``__import__`` and ``importlib.util.find_spec`` with a constant
  name, the same; with a computed name they are *dynamic*: listed, never guessed, except that a
  constant start (``"encodings." + name``) reaches every module whose name begins with it;
- imports under ``if TYPE_CHECKING:`` are counted apart: that code never runs;
- an import in the ``except ImportError:`` of a ``try:`` that holds nothing but imports is a
  fallback: followed only if one of the modules the ``try`` imports is missing (neither in the
  layer nor built into the compiler, which is the runtime's own build for another host);
- an extension module imports the module names its ELF file holds as C strings
  (``PyImport_ImportModule("decimal")``).

Reading ``__doc__`` (an attribute, ``getattr(x, "__doc__")``, ``getdoc``) is listed too: the
evidence for stripping docstrings (`pybuild.stages.bytecode`).

Modules that no code imports by name are the roots: the interpreter's start-up modules and the
standard library's imports by computed names (`pybuild/data/import-roots.toml`), module names in
other native libraries of the layer, and whatever the caller adds (site-packages, ``[prune]
keep``, a smoke trace). `reachable` follows the edges and says for each module why it is kept.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
import re
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pybuild.model.tree import EntryKind, Owner, Tree
from pybuild.runtimes.compiler import Compiler
from pybuild.ui import Ui

_PROGRESS_EVERY = 500

# Runs under the pinned compiler. Reads {"files": [[path, module], ...]} on stdin,
# writes {"modules": {module: facts}, "builtins": [...]} on stdout (keys below) and
# "progress N" lines on stderr.
#   i: imports [line, module, names, level, anchor, guard]   d: dynamic [line, call, argument,
#   prefix]   r: __doc__ reads [line, source line]   g: guards, the imports of each
#   `try: <imports> except ImportError:` (an import in the handler names its guard)
#   a: a literal __all__ or None   t: typing-only imports   e: why it could not be parsed
_WORKER = r"""
import ast, json, sys
job = json.load(sys.stdin)
IMPORTERS = {"import_module", "__import__", "find_spec"}

def callee(func):
    if isinstance(func, ast.Name) and func.id in IMPORTERS:
        return func.id
    if isinstance(func, ast.Attribute) and func.attr in IMPORTERS:
        owner = func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if name in ("importlib", "util", "builtins"):
            return name + "." + func.attr
    return None

def constant_start(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return constant_start(node.left)
    if isinstance(node, ast.JoinedStr) and node.values:
        return constant_start(node.values[0])
    return ""

def catches_import_error(handler):
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError")
               for k in kinds)

def statement(node, guard):
    if isinstance(node, ast.Import):
        return [[node.lineno, a.name, [], 0, None, guard] for a in node.names]
    return [[node.lineno, node.module or "", [a.name for a in node.names], node.level, None,
             guard]]

def is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")

def literal_all(tree):
    found = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            if isinstance(value, (ast.List, ast.Tuple)) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts):
                found = [e.value for e in value.elts]
            else:
                found = None
    return found

def scan(source, module):
    tree = ast.parse(source, module)  # a module name, not this machine's path, in errors
    lines = source.splitlines()
    def text(node):
        return lines[node.lineno - 1].decode("utf-8", "replace").strip()[:160]
    imports, dynamic, docs, guards, typing_only = [], [], [], [], 0
    stack = [(tree, False, None)]
    while stack:
        node, hidden, guard = stack.pop()
        if isinstance(node, ast.If) and is_type_checking(node.test):
            stack.extend((child, True, guard) for child in node.body)
            stack.extend((child, hidden, guard) for child in node.orelse)
            continue
        if (isinstance(node, ast.Try) and node.body and all(
                isinstance(b, (ast.Import, ast.ImportFrom)) for b in node.body) and any(
                h.type is not None and catches_import_error(h) for h in node.handlers)):
            # try: <imports only> / except ImportError: <fallback>
            guards.append([i[:4] for b in node.body for i in statement(b, None)])
            fallback = len(guards) - 1
            stack.extend((child, hidden, guard) for child in node.body + node.orelse +
                         node.finalbody)
            for handler in node.handlers:
                inner = fallback if handler.type is not None and catches_import_error(
                    handler) else guard
                stack.extend((child, hidden, inner) for child in handler.body)
            continue
        stack.extend((child, hidden, guard) for child in ast.iter_child_nodes(node))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if hidden:
                typing_only += 1
            else:
                imports.extend(statement(node, guard))
        elif isinstance(node, ast.Call):
            call = callee(node.func)
            argument = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "name"), None)
            if call is not None and argument is not None and not hidden:
                start = constant_start(argument)
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    name = argument.value
                    level = len(name) - len(name.lstrip("."))
                    anchor = None
                    if level:
                        given = node.args[1] if len(node.args) > 1 else next(
                            (k.value for k in node.keywords if k.arg == "package"), None)
                        if isinstance(given, ast.Constant) and isinstance(given.value, str):
                            anchor = given.value
                        elif isinstance(given, ast.Name) and given.id == "__name__":
                            anchor = module
                        elif not (isinstance(given, ast.Name) and given.id == "__package__"):
                            dynamic.append([node.lineno, call, ast.unparse(argument), ""])
                            continue
                    imports.append([node.lineno, name[level:], [], level, anchor, guard])
                else:
                    dynamic.append([node.lineno, call, ast.unparse(argument)[:160], start])
            elif isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(
                    node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[
                    1].value == "__doc__":
                docs.append([node.lineno, text(node)])
            elif (isinstance(node.func, ast.Name) and node.func.id == "getdoc") or (
                    isinstance(node.func, ast.Attribute) and node.func.attr == "getdoc"):
                docs.append([node.lineno, text(node)])
        elif isinstance(node, ast.Attribute) and node.attr == "__doc__" and isinstance(
                node.ctx, ast.Load):
            docs.append([node.lineno, text(node)])
        elif isinstance(node, ast.Name) and node.id == "__doc__" and isinstance(
                node.ctx, ast.Load):
            docs.append([node.lineno, text(node)])
        elif isinstance(node, ast.AugAssign) and getattr(node.target, "attr", getattr(
                node.target, "id", None)) == "__doc__":
            docs.append([node.lineno, text(node)])
    docs = sorted({tuple(d) for d in docs})
    return {"i": sorted(imports, key=repr), "d": sorted(dynamic), "r": docs, "g": guards,
            "a": literal_all(tree), "t": typing_only}

result = {}
for number, (path, module) in enumerate(job["files"], 1):
    try:
        with open(path, "rb") as handle:
            result[module] = scan(handle.read(), module)
    except (SyntaxError, ValueError, UnicodeDecodeError) as err:
        result[module] = {"e": type(err).__name__ + ": " + str(err).splitlines()[0][:200]}
    if number % EVERY == 0:
        print("progress", number, file=sys.stderr, flush=True)
json.dump({"modules": result, "builtins": sorted(sys.builtin_module_names)}, sys.stdout,
          sort_keys=True)
""".replace("EVERY", str(_PROGRESS_EVERY))

# The file name suffixes of extension modules: `_ssl.cpython-311-aarch64-linux-gnu.so`,
# `_rust.abi3.so`, `x.so`.
_EXTENSION = re.compile(r"\A([^.]+)(?:\.[A-Za-z0-9_-]+)?\.so\Z")
# A module name as C code writes it: NUL-terminated, between NULs.
_NATIVE_NAME = re.compile(rb"(?<=\x00)[A-Za-z_][A-Za-z0-9_.]{0,120}(?=\x00)")
_PTH_IMPORT = re.compile(r"\bimport\s+([A-Za-z_][\w.]*)")


@dataclass(frozen=True, slots=True)
class ModuleFile:
    """A module the interpreter can import from the layer."""

    name: str  # "email.mime.text"
    path: str  # layer-relative file: a .py or an extension module
    package: bool  # an __init__.py
    owner: Owner

    @property
    def extension(self) -> bool:
        """Whether it is an extension module (its file is not a .py)."""
        return not self.path.endswith(".py")


@dataclass(frozen=True, slots=True)
class ImportStatement:
    """One import as written: ``from ..a import b, c`` is (line, "a", ("b", "c"), 2)."""

    line: int
    module: str
    names: tuple[str, ...] = ()
    level: int = 0
    anchor: str | None = None  # import_module(".x", package=...): the package it is relative to
    guard: int | None = None  # in the `except ImportError:` of ModuleScan.guards[guard]


@dataclass(frozen=True, slots=True)
class DynamicImport:
    """An import whose name is computed at run time."""

    line: int
    call: str  # "importlib.import_module", "__import__", ...
    argument: str  # its source text
    prefix: str  # the name's constant start ("encodings."), or ""


@dataclass(frozen=True, slots=True)
class DocRead:
    """A read of ``__doc__`` in a module's code: its line and that source line (stripped, at most
    160 characters)."""

    line: int
    text: str  # the source line


@dataclass(frozen=True, slots=True)
class ModuleScan:
    """What one module's code says."""

    imports: tuple[ImportStatement, ...] = ()
    dynamic: tuple[DynamicImport, ...] = ()
    doc_reads: tuple[DocRead, ...] = ()
    exports: tuple[str, ...] | None = None  # a literal __all__
    # the imports of each `try: <imports only> except ImportError:` whose handler imports more
    guards: tuple[tuple[ImportStatement, ...], ...] = ()
    typing_only: int = 0  # imports under `if TYPE_CHECKING:`
    error: str | None = None  # not parsed (then it imports nothing we know of)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a module is kept: a root, or what another module does."""

    root: str | None = None  # "in site-packages (litellm)", ...
    importer: str | None = None
    line: int = 0  # of the import statement
    how: str = "import"  # "import", "package" (the package of `importer`), "native"

    def describe(self) -> str:
        """The reason as a phrase: the root's own words, "imported by M (line N)", "the package of
        M" or "named in the native code of M"."""
        if self.root is not None:
            return self.root
        if self.how == "package":
            return f"the package of {self.importer}"
        if self.how == "native":
            return f"named in the native code of {self.importer}"
        return f"imported by {self.importer} (line {self.line})"


@dataclass(frozen=True, slots=True)
class Fallback:
    """An import in ``except ImportError:`` that is not followed: what its ``try`` imports is
    all there (in the layer, or built into the interpreter)."""

    line: int
    module: str  # what the handler would import
    instead_of: str  # what the try imports


@dataclass
class ImportGraph:
    """A layer's modules, what each one's code says, and the edges between them (`build_graph`).
    `native` starts empty: the caller fills it from `native_imports`. `unresolved` holds each
    module's imports that name no module or package of the layer, nor one in `builtins`; `fallbacks`
    the imports in ``except ImportError:`` that were not followed."""

    modules: dict[str, ModuleFile]
    scans: dict[str, ModuleScan]
    builtins: frozenset[str] = frozenset()  # sys.builtin_module_names of the compiler
    edges: dict[str, dict[str, int]] = field(default_factory=dict)  # importer -> {module: line}
    native: dict[str, set[str]] = field(default_factory=dict)  # extension module -> names
    unresolved: dict[str, set[str]] = field(default_factory=dict)  # builtin, optional or missing
    fallbacks: dict[str, list[Fallback]] = field(default_factory=dict)

    def dynamic(self) -> list[tuple[str, DynamicImport]]:
        """Every import by a computed name with its module, by module then line."""
        return [(m, d) for m in sorted(self.scans) for d in self.scans[m].dynamic]

    def doc_reads(self) -> list[tuple[str, DocRead]]:
        """Every read of ``__doc__`` with its module, by module then line."""
        return [(m, r) for m in sorted(self.scans) for r in self.scans[m].doc_reads]


@dataclass(frozen=True, slots=True)
class RootRule:
    """Modules to keep that no import statement names (`pybuild/data/import-roots.toml`)."""

    modules: tuple[str, ...]  # fnmatch patterns over dotted names
    why: str


@cache
def default_roots() -> tuple[RootRule, ...]:
    """The rules of `pybuild/data/import-roots.toml`: modules kept although no import names them.
    Read once."""
    text = (
        importlib.resources.files("pybuild").joinpath("data/import-roots.toml").read_text("utf-8")
    )
    return tuple(RootRule(tuple(r["modules"]), r["why"]) for r in tomllib.loads(text)["roots"])


def search_path(tree: Tree) -> tuple[str, ...]:
    """Where the layer's interpreter looks for modules, in its order (layer-relative)."""
    stdlib = tree.layout.stdlib
    return (stdlib, f"{stdlib}/lib-dynload", tree.layout.site_packages)


def module_index(
    paths: Iterable[str], owners: Mapping[str, Owner], search: Sequence[str]
) -> dict[str, ModuleFile]:
    """Every importable module of the files `paths`, by name; the first directory of `search`
    that has a name wins, as on `sys.path`, and within one directory a package wins over an
    extension module, which wins over a source file (the import system's order)."""
    found: dict[str, tuple[int, int, ModuleFile]] = {}
    for path in sorted(paths):
        for order, root in enumerate(search):
            if not path.startswith(root + "/") or any(
                other != root and other.startswith(root + "/") and path.startswith(other + "/")
                for other in search
            ):
                continue  # not here, or under a deeper search directory (lib-dynload, ...)
            named = _module_name(path[len(root) + 1 :])
            if named is None:
                continue
            name, rank = named
            module = ModuleFile(name, path, rank == _PACKAGE, owners[path])
            if name not in found or (order, rank) < found[name][:2]:
                found[name] = (order, rank, module)
    return {name: found[name][2] for name in sorted(found)}


_PACKAGE, _EXTENSION_MODULE, _SOURCE = 0, 1, 2  # the import system's order within a directory


def _module_name(relative: str) -> tuple[str, int] | None:
    """The module a file under a search directory is, and its rank; None if it is none."""
    *directories, filename = relative.split("/")
    if not all(d.isidentifier() for d in directories):
        return None
    if filename.endswith(".py"):
        stem, rank = filename[:-3], _SOURCE
    elif (match := _EXTENSION.match(filename)) is not None:
        stem, rank = match[1], _EXTENSION_MODULE
    else:
        return None
    if not stem or "." in stem:
        return None
    if stem != "__init__":
        return ".".join([*directories, stem]), rank
    return (".".join(directories), _PACKAGE) if directories else None


def tree_modules(tree: Tree) -> dict[str, ModuleFile]:
    """The module index of a build tree."""
    files = {p: e.owner for p, e in tree.files() if e.kind is EntryKind.FILE}
    return module_index(files, files, search_path(tree))


def scan_modules(
    tree_root: Path, modules: Mapping[str, ModuleFile], compiler: Compiler, *, work: Path, ui: Ui
) -> tuple[dict[str, ModuleScan], frozenset[str]]:
    """Parse every source module with the pinned compiler: what each one's code says, and the
    modules built into the compiler (`sys.builtin_module_names`)."""
    sources = [m for m in modules.values() if not m.extension]
    job = {"files": [[str(tree_root / m.path), m.name] for m in sources]}
    raw = compiler.run_script(
        _WORKER,
        job,
        env={"PYTHONUTF8": "1", "LC_ALL": "C.UTF-8"},
        work=work,
        ui=ui,
        steps=(f"reading the imports of {len(sources):,} modules", len(sources)),
        what="the import scanner",
    )
    scans = {name: _module_scan(facts) for name, facts in sorted(raw["modules"].items())}
    return scans, frozenset(raw["builtins"])


def _module_scan(facts: dict[str, object]) -> ModuleScan:
    if "e" in facts:
        return ModuleScan(error=str(facts["e"]))
    imports = tuple(
        ImportStatement(int(line), str(module), tuple(names), int(level), anchor, guard)
        for line, module, names, level, anchor, guard in facts["i"]  # type: ignore[attr-defined]
    )
    guards = tuple(
        tuple(
            ImportStatement(int(line), str(module), tuple(names), int(level))
            for line, module, names, level in guard
        )
        for guard in facts["g"]  # type: ignore[attr-defined]
    )
    dynamic = tuple(
        DynamicImport(int(line), str(call), str(argument), str(prefix))
        for line, call, argument, prefix in facts["d"]  # type: ignore[attr-defined]
    )
    docs = tuple(DocRead(int(line), str(text)) for line, text in facts["r"])  # type: ignore[attr-defined]
    exports = facts["a"]
    return ModuleScan(
        imports=imports,
        dynamic=dynamic,
        doc_reads=docs,
        exports=None if exports is None else tuple(exports),  # type: ignore[arg-type]
        guards=guards,
        typing_only=int(facts["t"]),  # type: ignore[call-overload]
    )


def parents(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: the packages importing ``a.b.c`` runs first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def resolve_base(importer: ModuleFile, statement: ImportStatement) -> str | None:
    """The absolute module a statement names before its ``import`` list; None if a relative
    import climbs above the top-level package."""
    if statement.level == 0:
        return statement.module
    if statement.anchor is not None:
        package = statement.anchor
    else:
        package = importer.name if importer.package else importer.name.rpartition(".")[0]
    parts = package.split(".") if package else []
    up = statement.level - 1
    if up > len(parts) or (not parts and statement.level > 0):
        return None
    parts = parts[: len(parts) - up]
    if not parts:
        return None
    return ".".join([*parts, statement.module] if statement.module else parts)


def build_graph(
    modules: Mapping[str, ModuleFile],
    scans: Mapping[str, ModuleScan],
    builtins: frozenset[str] = frozenset(),
) -> ImportGraph:
    """The edges between the layer's modules, from what each one's code says."""
    graph = ImportGraph(dict(modules), dict(scans), builtins)
    packages = {p for name in modules for p in parents(name)}  # namespace packages included

    def exists(name: str) -> bool:
        return name in modules or name in packages or name in builtins

    for name in sorted(scans):
        importer = modules[name]
        scan = scans[name]
        edges: dict[str, int] = {}
        missing: set[str] = set()
        for statement in scan.imports:
            if statement.guard is not None:
                tried = [resolve_base(importer, s) for s in scan.guards[statement.guard]]
                if all(t is not None and exists(t) for t in tried):
                    base = resolve_base(importer, statement) or statement.module
                    graph.fallbacks.setdefault(name, []).append(
                        Fallback(statement.line, base, ", ".join(sorted({t for t in tried if t})))
                    )
                    continue
            targets = _targets(importer, statement, scans)
            if not targets or not exists(targets[0]):
                missing.add(targets[0] if targets else "." * statement.level + statement.module)
            for target in targets:
                if exists(target) and target not in builtins:
                    edges.setdefault(target, statement.line)
        for dynamic in scan.dynamic:
            for target in _prefixed(importer, dynamic.prefix, modules):
                edges.setdefault(target, dynamic.line)
        graph.edges[name] = dict(sorted(edges.items()))
        if missing:
            graph.unresolved[name] = missing
    return graph


def _targets(
    importer: ModuleFile, statement: ImportStatement, scans: Mapping[str, ModuleScan]
) -> list[str]:
    """The names one statement may import, its base first, then each imported name as a
    submodule (``*``: those of a literal ``__all__``); the caller keeps those that are modules
    (the others are attributes). Empty if a relative import climbs above its top package."""
    base = resolve_base(importer, statement)
    if base is None:
        return []
    targets = [base]
    for imported in statement.names:
        if imported == "*":
            exports = scans.get(base, ModuleScan()).exports or ()
            targets += [f"{base}.{export}" for export in exports]
        else:
            targets.append(f"{base}.{imported}")
    return targets


def _prefixed(importer: ModuleFile, prefix: str, modules: Iterable[str]) -> list[str]:
    """The modules a computed name with this constant start may be (relative starts resolved)."""
    if prefix.startswith("."):
        level = len(prefix) - len(prefix.lstrip("."))
        base = resolve_base(importer, ImportStatement(0, "", (), level))
        prefix = f"{base}.{prefix[level:]}" if base else ""
    return [m for m in modules if m.startswith(prefix)] if prefix else []


def native_imports(
    tree: Tree, modules: Mapping[str, ModuleFile]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What native code may import: the module names an ELF file of the tree holds as C
    strings. An extension module's are its imports (`ImportGraph.native`); another library's
    (loaded by some extension module) are roots, each with its file.

    Not the interpreter's (nor libpython's): they hold ``sys.stdlib_module_names``, the name of
    every standard-library module, so they would name everything; what the interpreter itself
    imports is listed in `pybuild/data/import-roots.toml`."""
    by_path = {m.path: name for name, m in modules.items()}
    edges: dict[str, set[str]] = {}
    roots: dict[str, str] = {}
    interpreter = tree.layout.interpreter
    libpython = f"python/lib/lib{tree.layout.python.executable}"
    for path, entry in tree.files():
        if entry.kind is not EntryKind.FILE or not entry.elf_magic:
            continue
        if path == interpreter or path.startswith(libpython):
            continue
        data = (tree.root / path).read_bytes()
        names = {match[0].decode("ascii") for match in _NATIVE_NAME.finditer(data)}
        own = by_path.get(path)
        found = {n for n in names if n in modules and n != own}
        if own is not None:
            edges[own] = found
        else:
            for name in found:
                roots.setdefault(name, path)
    return edges, dict(sorted(roots.items()))


def pth_imports(tree: Tree) -> dict[str, str]:
    """Modules the site-packages' ``.pth`` files import at start-up, each with its file."""
    found: dict[str, str] = {}
    prefix = tree.layout.site_packages + "/"
    for path in tree.paths():
        if path.startswith(prefix) and path.endswith(".pth") and "/" not in path[len(prefix) :]:
            for line in (tree.root / path).read_text("utf-8", "replace").splitlines():
                if line.startswith(("import ", "import\t")):
                    for name in _PTH_IMPORT.findall(line):
                        found.setdefault(name, path)
    return found


def matching(modules: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The module names one of the fnmatch `patterns` matches."""
    compiled = [re.compile(fnmatch.translate(p)) for p in patterns]
    return [m for m in modules if any(c.match(m) for c in compiled)]


def reachable(graph: ImportGraph, roots: Mapping[str, str]) -> dict[str, Reason]:
    """Every module the roots can import, directly or not, with why (the first path found,
    breadth first in sorted order, so the answer is stable)."""
    kept: dict[str, Reason] = {}
    queue: deque[str] = deque()

    def keep(name: str, reason: Reason) -> None:
        if name in kept:
            return
        kept[name] = reason
        queue.append(name)
        for parent in parents(name):
            if parent not in kept:
                kept[parent] = Reason(importer=name, how="package")
                queue.append(parent)

    for name in sorted(roots):
        keep(name, Reason(root=roots[name]))
    while queue:
        name = queue.popleft()
        for target, line in graph.edges.get(name, {}).items():
            keep(target, Reason(importer=name, line=line))
        for target in sorted(graph.native.get(name, ())):
            keep(target, Reason(importer=name, how="native"))
    return kept
