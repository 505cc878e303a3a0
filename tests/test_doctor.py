"""`pybuild doctor`: one line per check, what to do about each failure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import IndexServer, fixture_lock, make_wheel, write_layer
from pybuild.cli import main
from pybuild.model.layerfile import load_layer


def test_ready_machine(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.add(make_wheel(tmp_path / "d", "pip", "24.0"))
    layer = write_layer(tmp_path / "layer", "pip==24.0\n")  # runtime: a local file:// archive
    runtime = next((tmp_path / "layer" / "runtime").glob("*aarch64*install_only.tar.gz"))
    lock, _ = fixture_lock(load_layer(layer), runtime, [])
    (tmp_path / "layer" / "lock.json").write_text(lock.to_json())
    code = main(["doctor", "--layer", str(layer), "--python", sys.executable])
    out = capsys.readouterr().out
    assert (
        f"PASS  bytecode compiler (CPython 3.11): --python {sys.executable}: cpython 3.11." in out
    )
    assert f"PASS  package index reachable: {index.url} (PYBUILD_INDEX_URL)" in out
    assert f"PASS  runtime cached or reachable: fixture runtime {runtime.name}" in out
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
    runtime = next((tmp_path / "layer" / "runtime").glob("*aarch64*install_only.tar.gz"))
    lock, _ = fixture_lock(load_layer(layer), runtime, [])
    (tmp_path / "layer" / "lock.json").write_text(lock.to_json())
    runtime.unlink()
    assert main(["doctor", "--layer", str(layer), "--python", str(tmp_path / "nope")]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  bytecode compiler (CPython 3.11): --python {tmp_path / 'nope'}: nothing" in out
    assert "FAIL  package index reachable: http://127.0.0.1:9/simple/ (PYBUILD_INDEX_URL)" in out
    assert "set PIP_INDEX_URL or --index-url to a reachable mirror" in out
    assert "FAIL  runtime cached or reachable: " in out and "--from DIR" in out
    assert out.splitlines()[-1].startswith("doctor: 3 of ")
