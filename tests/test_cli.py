"""The command line as a user meets it: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "pybuild", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("command", [[], ["lock"], ["fetch"]])
def test_help(command: list[str]) -> None:
    result = _run(*command, "--help")
    assert result.returncode == 0
    assert "usage: pybuild" in result.stdout
    if command:
        assert "--layer PATH" in result.stdout


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.startswith("pybuild ")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "pybuild"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "lock" in result.stdout


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "layer.toml"
    bad.write_text('name = "x"\n[target]\narch = 1\n')
    result = _run("lock", "--layer", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {bad}: ")
    assert "target.arch: expected a string, got int 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_layer_file(tmp_path: Path) -> None:
    result = _run("fetch", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: layer/layer.toml: no such file (pass --layer PATH)\n"


def test_usage_error_exit_code() -> None:
    result = _run("fetch", "--jobs", "0")
    assert result.returncode == 2
    assert "is not a positive integer" in result.stderr
