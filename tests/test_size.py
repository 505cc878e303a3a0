"""The reference layer with Debian's Python (examples/debian12-arm64) within its size goal, built
with `--strict` as CI builds it: its generated standard-library rules are current, and the
distributions `[bytecode] strip_docstrings` names ship no docstrings while the layer's own code
keeps them. (The smoke suite, `layer/smoke/docstrings.py` included, runs on the same build in
tests/test_node.py's and tests/test_invoke.py's layer, and in `pybuild build --smoke`.)"""

from __future__ import annotations

import json
import marshal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

import pytest

from conftest import REPO
from pybuild.cli import main
from pybuild.model.layerfile import load_layer

EXAMPLE = REPO / "examples" / "debian12-arm64" / "layer.toml"
SITE = "python/lib/python3/dist-packages"
CO_OPTIMIZED = 0x1  # a function's code object (not a module's or a class body's)


def _functions(code: CodeType) -> Iterator[CodeType]:
    for const in code.co_consts:
        if isinstance(const, CodeType):
            if const.co_flags & CO_OPTIMIZED and not const.co_name.startswith("<"):
                yield const
            yield from _functions(const)


def _documented(archive: zipfile.ZipFile, name: str) -> list[str]:
    """The functions of a .pyc that have a docstring (a function's first constant is its
    docstring, or None)."""
    code = marshal.loads(archive.read(name)[16:])  # noqa: S302 - the layer pybuild just built
    return [f.co_qualname for f in _functions(code) if isinstance(f.co_consts[0], str)]


@pytest.mark.slow
@pytest.mark.network
def test_the_debian_example_builds_within_its_goal(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    assert main(["build", "-q", "--strict", "--layer", str(EXAMPLE), "--out", str(out)]) == 0
    goal = load_layer(EXAMPLE).options.budgets.zip_bytes
    zip_path = out / "litellm-debian12.zip"
    assert goal is not None and zip_path.stat().st_size <= goal
    report = json.loads((out / "litellm-debian12.report.json").read_text())
    rules = {r["rule"]: r["files"] for r in report["removed_by_rule"]}
    assert rules["prune-stdlib.toml: standard-library modules no import reaches"] > 0
    assert "runtime" in report["settings"]["bytecode_strip_docstrings"]
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        for name in (f"{SITE}/litellm/main.pyc", f"{SITE}/openai/_client.pyc"):
            assert _documented(archive, name) == [], name
        assert _documented(archive, "python/lib/python3.11/inspect.pyc") == []
        assert _documented(archive, f"{SITE}/litellm_bridge.pyc") != []  # the layer's own
    assert "python/lib/python3.11/xml/dom/minidom.pyc" not in names  # a generated rule
    assert "python/lib/python3.11/netrc.pyc" in names  # httpx reads ~/.netrc


@pytest.mark.slow
@pytest.mark.network
def test_the_generated_stdlib_rules_are_current() -> None:
    assert main(["prune-plan", "-q", "--check", "--layer", str(EXAMPLE)]) == 0
