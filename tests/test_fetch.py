"""`pybuild fetch`: a cache that only ever holds whole, correct files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from conftest import REPO
from helpers import IndexServer, make_wheel, sha256_of, write_layer
from pybuild.cli import main
from pybuild.errors import FetchError
from pybuild.model.layerfile import load_layer
from pybuild.model.lockfile import read_lock
from pybuild.stages.fetch import Fetched, fetch
from pybuild.support.cache import Cache
from pybuild.support.index import configured_indexes
from pybuild.support.net import RetryPolicy
from pybuild.ui import Ui

pytestmark = pytest.mark.slow  # locks with uv first

FAST_RETRY = RetryPolicy(attempts=3, backoff_seconds=0.01)


@pytest.fixture
def layer(index: IndexServer, tmp_path: Path, isolated_env: Path) -> Path:
    """A locked two-wheel layer; the cache and the request log start empty."""
    dists = tmp_path / "dists"
    index.add(
        make_wheel(dists, "app", "1.0", requires=["native==2.0"]),
        make_wheel(
            dists,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={"native/__init__.py": b"", "native/blob.bin": os.urandom(300_000)},
        ),
    )
    path = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n")
    assert main(["lock", "-q", "--layer", str(path)]) == 0
    shutil.rmtree(isolated_env, ignore_errors=True)  # lock measured the wheels into the cache
    index.requests.clear()
    return path


def _fetch_api(layer: Path) -> list[Fetched]:
    """Fetch in-process with a fast retry policy (the CLI waits seconds between attempts)."""
    lock = read_lock(load_layer(layer).lock_path)
    cache = Cache(Path(os.environ["PYBUILD_CACHE_DIR"]))
    return fetch(lock, cache, indexes=configured_indexes(), ui=Ui(quiet=True), retry=FAST_RETRY)


def _cache_files(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (cache / "sha256").rglob("*") if p.is_file()}


def _file_requests(index: IndexServer) -> list[str]:
    return [r for r in index.requests if r.startswith("/files/")]


def _runtime_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def _native(index: IndexServer) -> Path:
    return index.projects["native"][0]


def test_fetch_fills_cache_with_verified_files(
    layer: Path, index: IndexServer, isolated_env: Path
) -> None:
    assert main(["fetch", "-q", "--layer", str(layer)]) == 0
    lock = read_lock(layer.parent / "lock.json")
    stored = _cache_files(isolated_env)
    expected = {lock.runtime.sha256, *(w.sha256 for w in lock.wheels)}
    assert set(stored) == expected
    import hashlib

    for name, data in stored.items():
        assert hashlib.sha256(data).hexdigest() == name
    assert list((isolated_env / "tmp").iterdir()) == []

    index.requests.clear()
    assert main(["fetch", "-q", "--layer", str(layer)]) == 0
    assert index.requests == []  # everything came from the cache, verified


def test_hash_mismatch_never_enters_cache(
    layer: Path, index: IndexServer, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    native = _native(index)
    index.faults[native.name] = ["corrupt"] * 5
    assert main(["fetch", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert f"{native.name}: sha256 mismatch: expected {sha256_of(native)}, got " in err
    assert "Traceback" not in err
    assert sha256_of(native) not in _cache_files(isolated_env)
    assert list((isolated_env / "tmp").iterdir()) == []
    # A wrong hash is not retried: the bytes are wrong, not the transfer.
    assert _file_requests(index).count(f"/files/{native.name}") == 1


def test_index_listing_a_different_hash_is_refused(
    layer: Path, index: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    native = _native(index)
    native.write_bytes(native.read_bytes() + b"tampered")  # the index now lists another hash
    assert main(["fetch", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert f"{native.name}: the index {index.url} lists sha256 {sha256_of(native)}" in err
    assert "but the lock pins" in err
    assert f"/files/{native.name}" not in index.requests


def test_truncated_download_is_retried(layer: Path, index: IndexServer, isolated_env: Path) -> None:
    native = _native(index)
    index.faults[native.name] = ["truncate", "500"]
    _fetch_api(layer)
    assert _cache_files(isolated_env)[sha256_of(native)] == native.read_bytes()
    assert _file_requests(index).count(f"/files/{native.name}") == 3


def test_truncated_every_time_fails_cleanly(
    layer: Path, index: IndexServer, isolated_env: Path
) -> None:
    native = _native(index)
    index.faults[native.name] = ["truncate"] * 5
    with pytest.raises(FetchError) as info:
        _fetch_api(layer)
    size = native.stat().st_size
    assert f"{native.name}: cannot download from" in str(info.value)
    assert f"truncated: expected {size} bytes, got {size // 2}" in str(info.value)
    assert sha256_of(native) not in _cache_files(isolated_env)
    assert list((isolated_env / "tmp").iterdir()) == []


def test_corrupted_cache_entry_is_replaced(
    layer: Path, index: IndexServer, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "-q", "--layer", str(layer)]) == 0
    native = _native(index)
    cached = Cache(isolated_env).path(sha256_of(native))
    cached.write_bytes(b"bit rot" + cached.read_bytes()[7:])
    assert main(["fetch", "--layer", str(layer)]) == 0
    assert f"cached {native.name} was corrupt" in capsys.readouterr().err
    assert cached.read_bytes() == native.read_bytes()


def test_offline_lists_missing_artifacts(
    layer: Path, index: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "--offline", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert "--offline: 3 artifact(s) not in the cache" in err
    assert _native(index).name in err and "cpython-3.11.15" in err
    assert "--from DIR" in err
    assert index.requests == []


def test_from_directory_seeds_by_sha256(
    layer: Path, index: IndexServer, isolated_env: Path, tmp_path: Path
) -> None:
    seed = tmp_path / "seed" / "nested"
    seed.mkdir(parents=True)
    lock = read_lock(layer.parent / "lock.json")
    for wheel in index.projects.values():
        for path in wheel:
            shutil.copy(path, seed / f"renamed-{path.name}")  # names do not matter, hashes do
    runtime = _runtime_path(lock.runtime.url)
    shutil.copy(runtime, seed.parent / "runtime.tgz")
    native = _native(index)
    (seed / "same-size-other-bytes").write_bytes(b"\0" * native.stat().st_size)
    (seed / "dangling").symlink_to(tmp_path / "nowhere")
    runtime.unlink()  # the runtime URL no longer works: only --from can provide it

    assert (
        main(["fetch", "-q", "--offline", "--from", str(tmp_path / "seed"), "--layer", str(layer)])
        == 0
    )
    assert set(_cache_files(isolated_env)) == {
        lock.runtime.sha256,
        *(w.sha256 for w in lock.wheels),
    }
    assert index.requests == []


def test_runtime_unavailable_says_how_to_supply_it(
    layer: Path, index: IndexServer, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = read_lock(layer.parent / "lock.json")
    runtime = _runtime_path(lock.runtime.url)
    moved = runtime.with_name("moved.tgz")
    runtime.rename(moved)
    assert main(["fetch", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert f"cannot download the runtime {lock.runtime.filename}" in err
    assert "pybuild fetch --from DIR" in err and "--runtime-url" in err
    # The wheels were fetched all the same.
    assert _native(index).name not in err
    assert sha256_of(_native(index)) in _cache_files(isolated_env)

    assert main(["fetch", "-q", "--runtime-url", moved.as_uri(), "--layer", str(layer)]) == 0
    assert lock.runtime.sha256 in _cache_files(isolated_env)


def test_runtime_url_with_wrong_content(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.tgz"
    other.write_bytes(b"not the runtime")
    assert main(["fetch", "--runtime-url", other.as_uri(), "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert "cpython-3.11.15" in err and "size mismatch" not in err
    assert "truncated: expected" in err or "sha256 mismatch" in err


def test_wheel_missing_from_index(
    layer: Path, index: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    native = _native(index)
    index.projects["native"] = []
    assert main(["fetch", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{native.name}: not found on the configured index ({index.url}, from "
        "PYBUILD_INDEX_URL)" in err
    )


def test_concurrent_fetches_share_the_cache(
    layer: Path, index: IndexServer, isolated_env: Path
) -> None:
    command = [sys.executable, "-m", "pybuild", "fetch", "-q", "--layer", str(layer)]
    runs = [
        subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    lock = read_lock(layer.parent / "lock.json")
    assert set(_cache_files(isolated_env)) == {
        lock.runtime.sha256,
        *(w.sha256 for w in lock.wheels),
    }
    # Per-digest locks: every wheel crossed the network once, not once per process.
    files = _file_requests(index)
    assert sorted(files) == sorted(set(files))
    assert list((isolated_env / "tmp").iterdir()) == []
