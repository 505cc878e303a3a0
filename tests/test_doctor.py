"""`pybuild doctor`: one line per check, what to do about each failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import IndexServer, make_wheel, write_layer
from pybuild.cli import main


def test_ready_machine(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.add(make_wheel(tmp_path / "d", "pip", "24.0"))
    layer = write_layer(tmp_path / "layer", "pip==24.0\n")  # runtime: a local file:// archive
    code = main(["doctor", "--layer", str(layer)])
    out = capsys.readouterr().out
    assert "PASS  CPython 3.11 for bytecode: " in out
    assert f"PASS  package index reachable: {index.url} (PYBUILD_INDEX_URL)" in out
    assert "PASS  runtime cached or reachable: file://" in out
    assert "PASS  cache directory writable, with free space" in out
    if "FAIL" not in out:
        assert code == 0 and out.endswith("doctor: ready to lock, build and smoke-test\n")


def test_failures_say_what_to_do(
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PYBUILD_INDEX_URL", "http://127.0.0.1:9/simple/")  # nothing listens
    layer = write_layer(tmp_path / "layer", "pip==24.0\n")
    runtime = next((tmp_path / "layer" / "runtime").iterdir())
    runtime.unlink()
    assert main(["doctor", "--layer", str(layer), "--python", str(tmp_path / "nope")]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  CPython 3.11 for bytecode: --python {tmp_path / 'nope'}: expected" in out
    assert "FAIL  package index reachable: http://127.0.0.1:9/simple/ (PYBUILD_INDEX_URL)" in out
    assert "set PIP_INDEX_URL or --index-url to a reachable mirror" in out
    assert "FAIL  runtime cached or reachable: " in out and "pybuild fetch --from DIR" in out
    assert out.splitlines()[-1].startswith("doctor: 3 of ")
