from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import IndexServer, serve_index

REPO = Path(__file__).resolve().parent.parent
KEPT_VARIABLES = frozenset({"PYBUILD_UV"})  # isolated_env keeps these (the uv binary's location)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With PYBUILD_NO_SKIP=1 (set by .ci/run) a skipped test is a failed test."""
    report = yield
    if (
        os.environ.get("PYBUILD_NO_SKIP") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped, but PYBUILD_NO_SKIP=1 forbids skips: {report.longrepr}"
    return report


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pip/uv configuration of this machine leaks in; caches live in tmp_path.

    `PYBUILD_UV` stays: it says where the uv binary is, not how to resolve, and where pybuild's
    environment has no `uv` module (Nix: uv is nixpkgs' binary) it is the only way to find it."""
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_", "PYBUILD_")) and key not in KEPT_VARIABLES:
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PYBUILD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return tmp_path / "cache"


@pytest.fixture
def index(
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[IndexServer]:
    """A loopback package index, configured as the only index."""
    for state in serve_index(IndexServer(root=tmp_path / "index")):
        monkeypatch.setenv("PYBUILD_INDEX_URL", state.url)
        yield state
