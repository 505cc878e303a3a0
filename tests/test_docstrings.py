"""`[bytecode] strip_docstrings`: docstrings go from the listed owners' bytecode only; line
numbers, asserts and everything else stay as `py_compile` writes them."""

from __future__ import annotations

import marshal
import shutil
import tomllib
import traceback
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from helpers import HOST_STDLIB, host_compiler
from pybuild.errors import ConfigError
from pybuild.model.layerfile import BytecodeMode, parse_layer
from pybuild.model.tree import RUNTIME, Layout, Tree, wheel_owner
from pybuild.model.versions import PythonVersion
from pybuild.stages.bytecode import compile_tree, strip_owners
from pybuild.ui import Ui

STDLIB = "python/lib/python3.11"
SITE = f"{STDLIB}/site-packages"
SOURCE = b'''\
"""Module docstring."""


class Thing:
    """Class docstring
    over two lines."""

    def method(self):
        """Method docstring."""
        value = 1
        raise ValueError(value)


def only_doc():
    """Nothing but a docstring."""


async def coroutine():
    """Async docstring."""


def check():
    assert 1 == 2, "asserts stay"


def two_strings():
    """The docstring."""
    """A second string, which would become the docstring."""
    return 2


TEXT = "a string that is no docstring"
'''
RAISE_LINE = 11
DOCSTRING_LINES = {1, 5, 6, 9, 15, 19, 27, 28}
PLAIN = b"X = 1\n\n\ndef f():\n    return X\n"
LAYER = """\
name = "demo"
requirements = "requirements.txt"
[target]
arch = "aarch64"
glibc = "2.34"
python = "3.11"
[runtime]
python_version = "3.11.15"
release = "20260414"
flavor = "install_only_stripped"
"""


def _tree(root: Path) -> Tree:
    tree = Tree(root, Layout(PythonVersion(3, 11), SITE))
    bootstrap = (HOST_STDLIB / "importlib" / "_bootstrap_external.py").read_bytes()
    files = {
        f"{STDLIB}/importlib/_bootstrap_external.py": (bootstrap, RUNTIME),
        f"{STDLIB}/stdmod.py": (SOURCE, RUNTIME),
        f"{SITE}/app/__init__.py": (SOURCE, wheel_owner("app")),
        f"{SITE}/app/plain.py": (PLAIN, wheel_owner("app")),
        f"{SITE}/other/__init__.py": (SOURCE, wheel_owner("other")),
    }
    for path, (data, owner) in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        tree.write(path, data, owner)
    return tree


def _compile(
    tmp_path: Path, name: str, strip: set[str], mode: BytecodeMode = BytecodeMode.UNCHECKED_HASH
) -> dict[str, bytes]:
    """Compile a fresh fixture tree; the .pyc files by their source's path."""
    tree = _tree(tmp_path / name / "opt")
    result = compile_tree(
        tree, mode, host_compiler(), work=tmp_path, ui=Ui(quiet=True), strip_docstrings=strip
    )
    assert result.failed == ()
    assert (
        result.without_docstrings
        == sum(1 for p, e in tree.files() if p.endswith(".py") and str(e.owner) in strip)
        or mode is BytecodeMode.SOURCELESS
    )
    pycs = {}
    for path, _ in tree.files():
        if path.endswith(".pyc"):
            source = path.replace("__pycache__/", "").replace(".cpython-311", "")
            pycs[source[:-1]] = (tree.root / path).read_bytes()
    shutil.rmtree(tmp_path / name)
    return pycs


def _code(pyc: bytes) -> CodeType:
    code = marshal.loads(pyc[16:])  # noqa: S302 - our own compiler's output
    assert isinstance(code, CodeType)
    return code


def _run(pyc: bytes) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "fixture"}
    exec(_code(pyc), namespace)  # noqa: S102 - the fixture above
    return namespace


def _lines(code: CodeType) -> set[tuple[str, int]]:
    """(code object, line) of every instruction, nested code objects included."""
    found = {(code.co_qualname, line) for _, _, line in code.co_lines() if line is not None}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found |= _lines(const)
    return found


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    tmp_path = tmp_path_factory.mktemp("docstrings")
    return {
        "none": _compile(tmp_path, "none", set()),
        "app": _compile(tmp_path, "app", {"app"}),
        "runtime": _compile(tmp_path, "runtime", {"runtime"}),
    }


def test_docstrings_go_only_from_the_listed_owners(
    compiled: dict[str, dict[str, bytes]],
) -> None:
    stripped = _run(compiled["app"][f"{SITE}/app/__init__.py"])
    assert stripped.get("__doc__") is None  # a module's is None unless its code sets one
    assert stripped["Thing"].__doc__ is None
    assert stripped["Thing"].method.__doc__ is None
    assert stripped["only_doc"].__doc__ is None and stripped["only_doc"]() is None
    assert stripped["coroutine"].__doc__ is None
    assert stripped["two_strings"].__doc__ is None and stripped["two_strings"]() == 2
    assert stripped["TEXT"] == "a string that is no docstring"
    for kept in (f"{SITE}/other/__init__.py", f"{STDLIB}/stdmod.py"):
        namespace = _run(compiled["app"][kept])
        assert namespace["__doc__"] == "Module docstring."
        assert namespace["Thing"].__doc__ == "Class docstring\n    over two lines."
        assert namespace["Thing"].method.__doc__ == "Method docstring."
    assert _run(compiled["runtime"][f"{STDLIB}/stdmod.py"])["Thing"].__doc__ is None
    assert _run(compiled["runtime"][f"{SITE}/app/__init__.py"])["Thing"].__doc__ is not None


def test_asserts_and_line_numbers_stay(compiled: dict[str, dict[str, bytes]]) -> None:
    namespace = _run(compiled["app"][f"{SITE}/app/__init__.py"])
    with pytest.raises(AssertionError, match="asserts stay"):
        namespace["check"]()
    with pytest.raises(ValueError, match="1") as info:
        namespace["Thing"]().method()
    assert traceback.extract_tb(info.tb)[-1].lineno == RAISE_LINE
    stripped = _lines(_code(compiled["app"][f"{SITE}/app/__init__.py"]))
    original = _lines(_code(compiled["none"][f"{SITE}/app/__init__.py"]))
    assert stripped <= original  # no instruction on a line the original had none on
    assert {line for _, line in original - stripped} <= DOCSTRING_LINES


def test_nothing_else_changes(compiled: dict[str, dict[str, bytes]]) -> None:
    none, app = compiled["none"], compiled["app"]
    assert app[f"{SITE}/app/plain.py"] == none[f"{SITE}/app/plain.py"]  # no docstring in it
    assert app[f"{SITE}/other/__init__.py"] == none[f"{SITE}/other/__init__.py"]
    assert app[f"{SITE}/app/__init__.py"][:16] == none[f"{SITE}/app/__init__.py"][:16]


@pytest.mark.parametrize(
    ("mode", "flags"), [(BytecodeMode.CHECKED_HASH, 3), (BytecodeMode.SOURCELESS, 1)]
)
def test_other_modes(tmp_path: Path, mode: BytecodeMode, flags: int) -> None:
    pycs = _compile(tmp_path, "mode", {"app"}, mode)
    pyc = pycs[f"{SITE}/app/__init__.py"]
    assert int.from_bytes(pyc[4:8], "little") == flags  # PEP 552: hash-based, checked or not
    assert _run(pyc)["Thing"].__doc__ is None


def test_owners_must_be_the_layers(tmp_path: Path) -> None:
    assert strip_owners(["runtime", "app"], {"app", "other"}) == {"runtime", "app"}
    with pytest.raises(ConfigError, match=r"strip_docstrings: nope: .* \(known: app, other\)"):
        strip_owners(["app", "nope"], {"app", "other"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"app"', "bytecode.strip_docstrings: expected an array"),
        ('["app", "app"]', "bytecode.strip_docstrings: 'app' is listed twice"),
        ('["Typing_Extensions"]', "'Typing_Extensions' is neither \"runtime\" nor a distribution"),
        ("[1]", "bytecode.strip_docstrings: expected an array of strings"),
    ],
)
def test_config_errors(tmp_path: Path, value: str, expected: str) -> None:
    raw = tomllib.loads(LAYER + f"[bytecode]\nstrip_docstrings = {value}\n")
    with pytest.raises(ConfigError) as info:
        parse_layer(raw, tmp_path / "layer.toml")
    assert expected in str(info.value)


def test_config_default_and_value(tmp_path: Path) -> None:
    layer = parse_layer(tomllib.loads(LAYER), tmp_path / "layer.toml")
    assert layer.options.strip_docstrings == ()
    raw = tomllib.loads(LAYER + '[bytecode]\nstrip_docstrings = ["runtime", "app"]\n')
    layer = parse_layer(raw, tmp_path / "layer.toml")
    assert layer.options.strip_docstrings == ("runtime", "app")
