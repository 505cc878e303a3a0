"""The committed reference layer and the Debian example: their locks are current, and the real
index (and Debian's archive) reproduce them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from pybuild.model.layerfile import PbsRuntime, load_layer
from pybuild.model.lockfile import read_lock
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache, file_sha256
from pybuild.support.index import configured_indexes
from pybuild.ui import Ui


@pytest.mark.parametrize("layer", ["layer/layer.toml", "examples/debian12-arm64/layer.toml"])
def test_committed_locks_are_current(layer: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pybuild", "lock", "--check", "--layer", layer],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_reference_lock_matches_layer_definition() -> None:
    layer = load_layer(REPO / "layer" / "layer.toml")
    lock = read_lock(layer.lock_path)
    assert isinstance(layer.runtime, PbsRuntime) and layer.runtime.archive is not None
    (runtime,) = lock.runtime.files
    assert (runtime.url, runtime.sha256, runtime.size) == (
        layer.runtime.archive.url,
        layer.runtime.archive.sha256,
        layer.runtime.archive.size,
    )
    assert lock.target == layer.target


def test_the_debian_example_installs_the_reference_wheels() -> None:
    reference = read_lock(REPO / "layer" / "lock.json")
    example = read_lock(REPO / "examples" / "debian12-arm64" / "lock.json")
    assert example.wheels == reference.wheels


@pytest.mark.network
@pytest.mark.slow
def test_relocking_against_the_real_index_reproduces_the_lock(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "layer", copy / "layer")
    (copy / "layer" / "lock.json").unlink()
    shutil.copy(REPO / "requirements.txt", copy)
    env = {**os.environ, "PYBUILD_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "pybuild", "lock", "-q"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (copy / "layer" / "lock.json").read_bytes() == (
        REPO / "layer" / "lock.json"
    ).read_bytes()


@pytest.mark.network
def test_fetch_real_wheels_through_the_configured_index(tmp_path: Path) -> None:
    """The lock names no host: the wheels are found through this machine's index configuration."""
    lock = read_lock(REPO / "layer" / "lock.json")
    # The three smallest wheels; the runtime's host (GitHub) is not reachable from CI.
    artifacts = [a for a in lock_artifacts(lock, host=None, mirrors={}) if a.kind == "wheel"]
    smallest = sorted(artifacts, key=lambda a: a.want.size)[:3]
    cache = Cache(tmp_path / "cache")
    results = fetch_artifacts(smallest, cache, indexes=configured_indexes(), ui=Ui(quiet=True))
    assert [r.how for r in results] == ["downloaded"] * 3
    for artifact in smallest:
        assert file_sha256(cache.path(artifact.want.sha256)) == (
            artifact.want.sha256,
            artifact.want.size,
        )
