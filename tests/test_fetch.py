"""`pybuild fetch`: a cache that only ever holds whole, correct files; Ctrl-C that stops at once
and leaves nothing behind; errors that say which file and why."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import REPO
from helpers import (
    IndexServer,
    fixture_lock,
    make_runtime_archive,
    make_wheel,
    sha256_of,
    write_layer,
)
from pybuild.cli import main
from pybuild.errors import FetchError
from pybuild.model.layerfile import load_layer
from pybuild.model.lockfile import Lock, read_lock
from pybuild.stages.fetch import Fetched, fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache
from pybuild.support.index import configured_indexes
from pybuild.support.net import RetryPolicy
from pybuild.ui import Ui

FAST_RETRY = RetryPolicy(attempts=3, backoff_seconds=0.01)


@pytest.fixture
def layer(index: IndexServer, tmp_path: Path, isolated_env: Path) -> Path:
    """A locked two-wheel layer (locked without uv); the cache and the request log start empty."""
    dists = tmp_path / "dists"
    wheels = [
        make_wheel(dists, "app", "1.0", requires=["native==2.0"]),
        make_wheel(
            dists,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={"native/__init__.py": b"", "native/blob.bin": os.urandom(300_000)},
        ),
    ]
    index.add(*wheels)
    runtime = make_runtime_archive(tmp_path / "runtime")
    path = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n", runtime=runtime)
    lock, _ = fixture_lock(load_layer(path), runtime, wheels)
    (path.parent / "lock.json").write_text(lock.to_json())
    index.requests.clear()
    return path


def _lock(layer: Path) -> Lock:
    return read_lock(layer.parent / "lock.json")


def _fetch_api(layer: Path) -> list[Fetched]:
    """Fetch in-process with a fast retry policy (the CLI waits seconds between attempts)."""
    cache = Cache(Path(os.environ["PYBUILD_CACHE_DIR"]))
    artifacts = lock_artifacts(_lock(layer), host=None, mirrors={})
    return fetch_artifacts(
        artifacts, cache, indexes=configured_indexes(), ui=Ui(quiet=True), retry=FAST_RETRY
    )


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
    lock = _lock(layer)
    stored = _cache_files(isolated_env)
    expected = {lock.runtime.files[0].sha256, *(w.sha256 for w in lock.wheels)}
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
    details = " ".join(info.value.details)
    assert f"{native.name}: cannot download from" in details
    assert f"truncated: expected {size} bytes, got {size // 2}" in details
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
    lock = _lock(layer)
    for wheel in index.projects.values():
        for path in wheel:
            shutil.copy(path, seed / f"renamed-{path.name}")  # names do not matter, hashes do
    runtime = _runtime_path(str(lock.runtime.files[0].url))
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
        lock.runtime.files[0].sha256,
        *(w.sha256 for w in lock.wheels),
    }
    assert index.requests == []


def test_runtime_unavailable_says_how_to_supply_it(
    layer: Path, index: IndexServer, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _lock(layer)
    runtime = _runtime_path(str(lock.runtime.files[0].url))
    moved = runtime.with_name("moved.tgz")
    runtime.rename(moved)
    assert main(["fetch", "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 of 3 artifacts could not be fetched\n")
    assert f"cannot download the runtime {lock.runtime.files[0].filename}" in err
    assert "--from DIR" in err and "--runtime-url" in err
    assert "examples/debian12-arm64/layer.toml" in err  # the road without GitHub
    assert "retrying" not in err  # a local file is read once
    # The wheels were fetched all the same.
    assert _native(index).name not in err
    assert sha256_of(_native(index)) in _cache_files(isolated_env)

    assert main(["fetch", "-q", "--runtime-url", moved.as_uri(), "--layer", str(layer)]) == 0
    assert lock.runtime.files[0].sha256 in _cache_files(isolated_env)


def test_runtime_url_with_wrong_content(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.tgz"
    other.write_bytes(b"not the runtime")
    assert main(["fetch", "--runtime-url", other.as_uri(), "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert "cpython-3.11.15" in err and "is not the pinned file" in err
    assert "retrying" not in err and "truncated" not in err


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


def test_from_says_which_file_matched_nothing_and_why(
    layer: Path, index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _lock(layer)
    runtime_name = lock.runtime.files[0].filename
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / runtime_name).write_bytes(b"a cut download")  # the right name, the wrong size
    native = _native(index)
    (seed / native.name).write_bytes(b"x" * native.stat().st_size)  # right size, wrong bytes
    code = main(["fetch", "--offline", "--from", str(seed), "--layer", str(layer)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.splitlines()
    assert (
        lines[0] == f"error: --offline: 3 artifact(s) are neither in the cache nor in --from {seed}"
    )
    assert f"  {runtime_name}: {seed / runtime_name} has 14 bytes, the lock pins" in err
    assert f"  {native.name}: {seed / native.name} has sha256 " in err
    assert "pybuild fetch --from" not in err  # no advice to do what was just done


def test_a_name_that_does_not_resolve_is_not_retried(
    layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://pybuild-test.invalid/cpython.tar.gz"
    assert main(["fetch", "--runtime-url", url, "--layer", str(layer)]) == 2
    err = capsys.readouterr().err
    assert "cannot resolve pybuild-test.invalid" in err
    assert "retrying" not in err


def _stalling_server() -> tuple[int, threading.Event]:
    """A loopback server that answers headers for a big body, then sends nothing."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        server.settimeout(0.2)
        connections = []
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 200_000
            )
            connections.append(connection)
        for connection in connections:
            connection.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], stop


def test_ctrl_c_stops_a_stalled_download_and_leaves_nothing(
    layer: Path, isolated_env: Path
) -> None:
    port, stop = _stalling_server()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pybuild",
                "fetch",
                "--layer",
                str(layer),
                "--runtime-url",
                f"http://127.0.0.1:{port}/runtime.tar.gz",
            ],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        partials: list[Path] = []
        while time.monotonic() < deadline and not partials:  # the transfer has begun
            time.sleep(0.1)
            partials = list((isolated_env / "tmp").glob("*.partial"))
        assert partials, "the download never started"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        stopped_after = time.monotonic() - started
    finally:
        stop.set()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
    assert stopped_after < 10  # a stalled server would hold it for the 30 s socket timeout
    assert list((isolated_env / "tmp").glob("*.partial")) == []


def test_partials_of_a_killed_run_are_reclaimed(layer: Path, isolated_env: Path) -> None:
    port, stop = _stalling_server()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pybuild",
                "fetch",
                "--layer",
                str(layer),
                "--runtime-url",
                f"http://127.0.0.1:{port}/runtime.tar.gz",
            ],
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list((isolated_env / "tmp").glob("*.partial")):
            time.sleep(0.1)
        process.kill()  # SIGKILL: no chance to clean up
        process.wait()
    finally:
        stop.set()
    left = list((isolated_env / "tmp").glob("*.partial"))
    assert left, "kill -9 leaves the partial file"
    for path in left:  # as if they were old enough
        os.utime(path, (time.time() - 60, time.time() - 60))
    assert main(["fetch", "-q", "--layer", str(layer)]) == 0
    assert list((isolated_env / "tmp").glob("*.partial")) == []


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
    lock = _lock(layer)
    assert set(_cache_files(isolated_env)) == {
        lock.runtime.files[0].sha256,
        *(w.sha256 for w in lock.wheels),
    }
    # Per-digest locks: every wheel crossed the network once, not once per process.
    files = _file_requests(index)
    assert sorted(files) == sorted(set(files))
    assert list((isolated_env / "tmp").iterdir()) == []
