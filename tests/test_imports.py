"""The import graph (`pybuild.stages.imports`) on a fixture package set, and `pybuild prune-plan`
from the command line: the rule file it writes, `--check`, a trace, and a build applying it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from helpers import (
    FIXTURES,
    IndexServer,
    host_compiler,
    make_fake_runtime,
    make_wheel,
    python_args,
    write_fixture_lock,
    write_layer,
)
from pybuild.cli import main
from pybuild.model.tree import RUNTIME, Layout, Tree, wheel_owner
from pybuild.model.versions import PythonVersion
from pybuild.runtimes.compiler import Compiler, CompilerError
from pybuild.stages.imports import (
    ImportGraph,
    ImportStatement,
    ModuleFile,
    build_graph,
    module_index,
    native_imports,
    reachable,
    resolve_base,
    scan_modules,
    tree_modules,
)
from pybuild.stages.prune import _rule_file
from pybuild.ui import Ui

STDLIB = "python/lib/python3.11"
SITE = f"{STDLIB}/site-packages"
DYNLOAD = f"{STDLIB}/lib-dynload"
NATIVE = b"\x7fELF" + b"\x00" * 12 + b"\x00helper_mod\x00_native\x00not.a.module\x00"

# The standard library of the fixture: who imports what is in the comments.
STDLIB_FILES: dict[str, bytes] = {
    "json/__init__.py": b"from .decoder import JSONDecoder\n",  # relative
    "json/decoder.py": b"import re\nclass JSONDecoder:\n    pass\n",
    "re.py": b"",
    "email/__init__.py": b"",
    "email/mime/__init__.py": b"",
    "email/mime/text.py": b"",  # `from email.mime import text`: a submodule
    "email/mime/image.py": b"",  # nothing imports it
    "unused/__init__.py": b"import re\n",  # a whole package nothing imports
    "unused/deep.py": b"",
    "lonely.py": b"",
    "typing_only.py": b"",  # imported under TYPE_CHECKING only
    "star/__init__.py": b'__all__ = ["sub"]\n',
    "star/sub.py": b"",
    "star/other.py": b"",  # not in __all__
    "encodings/__init__.py": b"def search(name):\n    return __import__('encodings.' + name)\n",
    "encodings/latin_1.py": b"",  # reached through the constant start "encodings."
    "decimal.py": (
        b"try:\n    from _decimal import *\nexcept ImportError:\n    from _pydecimal import *\n"
    ),
    "_pydecimal.py": b"",  # a fallback the layer does not need: _decimal is there
    "fast.py": b"try:\n    import _fast_accel\nexcept ImportError:\n    import _slow_fallback\n",
    "_slow_fallback.py": b"",  # a fallback the layer needs: there is no _fast_accel
    "sysconfig.py": b"def load(name):\n    return __import__(name)\n",  # dynamic
    "called.py": b"",  # importlib.import_module("called")
    "helper_mod.py": b"",  # named in _native's C strings
    "newer.py": b"type Alias = int\n",  # 3.12 syntax: the 3.11 grammar refuses it
}
APP = b'''\
"""The app."""
import importlib
from typing import TYPE_CHECKING

import json
from email.mime import text
from star import *
from . import helpers
import decimal, encodings, fast, sysconfig, _native, newer

if TYPE_CHECKING:
    import typing_only

importlib.import_module("called")


def plugin(name):
    return importlib.import_module(name)


def describe(obj):
    return obj.__doc__
'''
HELPERS = b"from .. import beyond\nfrom . import missing_sibling\n"


def _fixture(root: Path) -> tuple[dict[str, ModuleFile], ImportGraph]:
    files = {f"{STDLIB}/{k}": v for k, v in STDLIB_FILES.items()}
    files[f"{DYNLOAD}/_decimal.cpython-311-aarch64-linux-gnu.so"] = b"\x7fELF"
    files[f"{DYNLOAD}/_native.cpython-311-aarch64-linux-gnu.so"] = NATIVE
    files[f"{SITE}/app/__init__.py"] = APP
    files[f"{SITE}/app/helpers.py"] = HELPERS
    files[f"{SITE}/app-1.0.dist-info/METADATA"] = b"Name: app\n"
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    owners = {p: wheel_owner("app") if p.startswith(SITE) else RUNTIME for p in files}
    modules = module_index(files, owners, (STDLIB, DYNLOAD, SITE))
    scans, builtins = scan_modules(
        root, modules, host_compiler(), work=root.parent, ui=Ui(quiet=True)
    )
    graph = build_graph(modules, scans, builtins)
    graph.native = {"_native": {"helper_mod"}}  # as native_imports reads it from the ELF file
    return modules, graph


@pytest.fixture(scope="module")
def fixture_graph(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, ModuleFile], ImportGraph]:
    root = tmp_path_factory.mktemp("imports") / "opt"
    return _fixture(root)


def test_the_module_index(fixture_graph: tuple[dict[str, ModuleFile], ImportGraph]) -> None:
    modules, _ = fixture_graph
    assert modules["json"].package and modules["json"].path == f"{STDLIB}/json/__init__.py"
    assert modules["_native"].extension and modules["_native"].owner == RUNTIME
    assert modules["app.helpers"].owner == wheel_owner("app")
    assert "site-packages.app" not in modules  # PBS's site-packages is its own directory
    assert not any(".dist-info" in name for name in modules)


def test_module_index_order() -> None:
    files = ["a/x.py", "a/x/__init__.py", "a/y.py", "a/y.abi3.so", "b/x.py", "a/bad-dir/z.py"]
    owners = dict.fromkeys(files, RUNTIME)
    modules = module_index(files, owners, ("a", "b"))
    assert modules["x"].path == "a/x/__init__.py"  # a package before a module
    assert modules["y"].path == "a/y.abi3.so"  # an extension module before a source file
    assert sorted(modules) == ["x", "y"]  # the first directory wins; bad-dir is no package


def test_imports_as_written(fixture_graph: tuple[dict[str, ModuleFile], ImportGraph]) -> None:
    _, graph = fixture_graph
    app = graph.edges["app"]
    assert {"json", "email.mime", "email.mime.text", "star", "star.sub", "app.helpers"} <= set(app)
    assert "star.other" not in app  # `import *` follows __all__
    assert "typing_only" not in app and graph.scans["app"].typing_only == 1
    assert app["called"] == 14  # import_module with a constant: an import, at its line
    assert graph.edges["json"] == {"json.decoder": 1}  # `from .decoder import`
    assert set(graph.edges["encodings"]) == {"encodings.latin_1"}  # "encodings." + name
    # `from .. import` above the top package; `from . import missing_sibling` may be a name
    assert graph.unresolved["app.helpers"] == {".."}


def test_dynamic_imports_are_flagged(
    fixture_graph: tuple[dict[str, ModuleFile], ImportGraph],
) -> None:
    _, graph = fixture_graph
    dynamic = {(name, d.call, d.argument, d.prefix) for name, d in graph.dynamic()}
    assert ("app", "importlib.import_module", "name", "") in dynamic
    assert ("sysconfig", "__import__", "name", "") in dynamic
    assert ("encodings", "__import__", "'encodings.' + name", "encodings.") in dynamic


def test_fallback_imports(fixture_graph: tuple[dict[str, ModuleFile], ImportGraph]) -> None:
    _, graph = fixture_graph
    (fallback,) = graph.fallbacks["decimal"]
    assert (fallback.module, fallback.instead_of) == ("_pydecimal", "_decimal")
    assert "_pydecimal" not in graph.edges["decimal"]
    assert "_slow_fallback" in graph.edges["fast"]  # no _fast_accel: the fallback is needed
    assert "fast" not in graph.fallbacks


def test_doc_reads_and_parse_errors(
    fixture_graph: tuple[dict[str, ModuleFile], ImportGraph],
) -> None:
    _, graph = fixture_graph
    assert [(m, r.line, r.text) for m, r in graph.doc_reads()] == [
        ("app", 22, "return obj.__doc__")
    ]
    # parsed with the compiler's grammar (3.11 here): 3.12's `type` statement is an error
    assert (graph.scans["newer"].error or "").startswith("SyntaxError")


def test_reachable_with_reasons(fixture_graph: tuple[dict[str, ModuleFile], ImportGraph]) -> None:
    modules, graph = fixture_graph
    roots = {m: "site-packages" for m in modules if m.startswith("app")}
    kept = reachable(graph, roots)
    gone = sorted(m for m in modules if m not in kept)
    assert gone == [
        "_pydecimal",
        "email.mime.image",
        "lonely",
        "star.other",
        "typing_only",
        "unused",
        "unused.deep",
    ]
    assert kept["re"].describe() == "imported by json.decoder (line 1)"
    assert kept["email"].describe() == "the package of email.mime"
    assert kept["helper_mod"].describe() == "named in the native code of _native"
    assert kept["app"].describe() == "site-packages"


@pytest.mark.parametrize(
    ("importer", "package", "statement", "expected"),
    [
        ("a.b", False, ImportStatement(1, "c", (), 1), "a.c"),
        ("a.b", True, ImportStatement(1, "c", (), 1), "a.b.c"),
        ("a.b.c", False, ImportStatement(1, "", (), 2), "a"),
        ("a", False, ImportStatement(1, "x", (), 1), None),  # above the top-level package
        ("a.b", False, ImportStatement(1, "x", (), 1, anchor="p.q"), "p.q.x"),
    ],
)
def test_relative_imports(
    importer: str, package: bool, statement: ImportStatement, expected: str | None
) -> None:
    module = ModuleFile(importer, "x.py", package, RUNTIME)
    assert resolve_base(module, statement) == expected


def test_native_code_names_modules(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "opt", Layout(PythonVersion(3, 11), SITE))
    for path, data, owner in (
        (f"{DYNLOAD}/_native.cpython-311-aarch64-linux-gnu.so", NATIVE, RUNTIME),
        (f"{STDLIB}/helper_mod.py", b"", RUNTIME),
        (f"{SITE}/vendored.libs/libhelper.so.1", b"\x7fELF\x00\x00lonely\x00", wheel_owner("x")),
        (f"{STDLIB}/lonely.py", b"", RUNTIME),
        ("python/bin/python3.11", b"\x7fELF\x00\x00everything\x00", RUNTIME),
        (f"{STDLIB}/everything.py", b"", RUNTIME),
    ):
        (tree.root / path).parent.mkdir(parents=True, exist_ok=True)
        tree.write(path, data, owner)
    modules = tree_modules(tree)
    edges, roots = native_imports(tree, modules)
    # an extension module's names are its imports (its own name is not); another library's
    # are roots; the interpreter's are neither (it names every standard-library module)
    assert edges == {"_native": {"helper_mod"}}
    assert roots == {"lonely": f"{SITE}/vendored.libs/libhelper.so.1"}


def test_a_scanner_that_cannot_run(tmp_path: Path) -> None:
    modules = {"m": ModuleFile("m", "m.py", False, RUNTIME)}
    (tmp_path / "m.py").write_text("")
    broken = Compiler((str(tmp_path / "no-python"),), "3.11.0", None, "--python")
    with pytest.raises(CompilerError, match="cannot run the import scanner"):
        scan_modules(tmp_path, modules, broken, work=tmp_path, ui=Ui(quiet=True))


# --- pybuild prune-plan ------------------------------------------------------------------


@pytest.fixture
def layer(tmp_path: Path, isolated_env: Path, index: IndexServer) -> Path:
    """A layer whose stdlib is the fixture's and whose one wheel is the app above."""
    wheel = make_wheel(
        tmp_path / "dists",
        "app",
        "1.0",
        files={
            "app/__init__.py": APP,
            "app/helpers.py": HELPERS,
            # what the default profile removes from wheels (and a header it keeps)
            "app/__init__.pyi": b"def plugin(name: str) -> object: ...\n",
            "app/py.typed": b"",
            "app/_speed.pyx": b"cdef int x\n",
            "app/_speed.pxd": b"cdef int x\n",
            "app/_speed.c": b"int x;\n",
            "app/include/speed.h": b"int x;\n",
        },
    )
    index.add(wheel)
    extra = {f"{STDLIB}/{k}": v for k, v in STDLIB_FILES.items()}
    extra[f"{STDLIB}/importlib/__init__.py"] = b"from . import _bootstrap_external\n"
    extra[f"{DYNLOAD}/_decimal.cpython-311-aarch64-linux-gnu.so"] = (
        FIXTURES / "good-aarch64.so"
    ).read_bytes()
    runtime = make_fake_runtime(tmp_path / "runtime", extra=extra)
    path = write_layer(tmp_path / "layer", "app==1.0\n", runtime=runtime)
    write_fixture_lock(path, runtime, [wheel])
    return path


def _plan(layer: Path, *extra: str) -> int:
    return main(["prune-plan", "-q", "--layer", str(layer), *python_args(), *extra])


def _paths(rule_file: Path) -> list[str]:
    (rule,) = _rule_file(rule_file.read_text(encoding="utf-8"), str(rule_file))
    assert rule[:2] == ("standard-library modules no import reaches", "runtime")
    return list(rule[2])


def test_prune_plan_writes_a_stable_rule_file(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "plan.json"
    assert _plan(layer, "--report", str(report)) == 0
    rules = layer.parent / "prune-stdlib.toml"
    assert "does not name it in [prune] rules" in capsys.readouterr().err
    text = rules.read_text(encoding="utf-8")
    paths = _paths(rules)
    for path in (
        "python/lib/{python}/_pydecimal.py",
        "python/lib/{python}/email/mime/image.py",
        "python/lib/{python}/lonely.py",
        "python/lib/{python}/unused/**",
        "python/lib/{python}/typing_only.py",
    ):
        assert path in paths
    assert paths == sorted(paths)
    for kept in ("json", "encodings", "_slow_fallback", "importlib"):
        assert not any(p.startswith(f"python/lib/{{python}}/{kept}") for p in paths)
    assert "#   app:18  importlib.import_module(name)" in text
    assert "#   decimal:4  _pydecimal (instead of _decimal)" in text
    assert '"python/lib/{python}/unused/**",' in text and "# unused and 1 modules in it" in text
    evidence = json.loads(report.read_text())
    assert evidence["kept"]["re"] == "imported by json.decoder (line 1)"
    assert evidence["doc_reads"] == {"app": ["app:22: return obj.__doc__"]}
    # the same inputs write the same bytes, and --check agrees
    assert _plan(layer) == 0
    assert rules.read_text(encoding="utf-8") == text
    assert _plan(layer, "--check") == 0


def test_prune_plan_check_and_trace(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = layer.parent / "prune-stdlib.toml"
    assert _plan(layer) == 0
    rules.write_text(rules.read_text().replace('"python/lib/{python}/lonely.py",', ""))
    capsys.readouterr()
    assert _plan(layer, "--check") == 1
    err = capsys.readouterr().err
    assert "prune-stdlib.toml is stale" in err and "+ python/lib/{python}/lonely.py" in err
    # a module only a trace saw is kept, and stays kept when the file is generated again
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"loaded": [f"{STDLIB}/lonely.pyc"], "never_loaded": []}))
    assert _plan(layer, "--trace", str(trace)) == 0
    assert "python/lib/{python}/lonely.py" not in _paths(rules)
    assert '[plan]\ntraced = [\n    "lonely",\n]\n' in rules.read_text()
    assert _plan(layer) == 0
    assert "python/lib/{python}/lonely.py" not in _paths(rules)
    trace.write_text("{}")
    assert _plan(layer, "--trace", str(trace)) == 2
    assert "not a smoke trace" in capsys.readouterr().err


def test_a_build_applies_the_generated_rules(layer: Path, tmp_path: Path) -> None:
    assert _plan(layer) == 0
    with layer.open("a", encoding="utf-8") as handle:
        handle.write('[prune]\nrules = ["prune-stdlib.toml"]\n')
    assert _plan(layer, "--check") == 0  # the file is not an input of itself
    out = tmp_path / "dist"
    assert main(["build", "-q", "--layer", str(layer), "--out", str(out), *python_args()]) == 0
    with zipfile.ZipFile(out / "testlayer.zip") as archive:
        names = set(archive.namelist())
    assert f"{STDLIB}/json/__pycache__/decoder.cpython-311.pyc" in names
    assert f"{STDLIB}/__pycache__/_slow_fallback.cpython-311.pyc" in names
    for gone in ("lonely", "_pydecimal", "typing_only"):
        assert f"{STDLIB}/__pycache__/{gone}.cpython-311.pyc" not in names
        assert f"{STDLIB}/{gone}.py" not in names
    assert not any(n.startswith(f"{STDLIB}/unused/") for n in names)
    assert {n for n in names if n.startswith(f"{SITE}/app/") and not n.endswith("/")} == {
        f"{SITE}/app/__init__.py",
        f"{SITE}/app/helpers.py",
        f"{SITE}/app/__pycache__/__init__.cpython-311.pyc",
        f"{SITE}/app/__pycache__/helpers.cpython-311.pyc",
        f"{SITE}/app/include/speed.h",
    }
    report = json.loads((out / "testlayer.report.json").read_text())
    assert any(
        r["rule"] == "prune-stdlib.toml: standard-library modules no import reaches"
        for r in report["removed_by_rule"]
    )
