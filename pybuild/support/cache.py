"""A content-addressed cache: a file is stored under its sha256 and is always whole and correct.

Writes go to a temporary file in the cache, are hashed and sized while written, and are renamed into
place only when both match what was asked for, so no reader ever sees a partial or wrong file.
Concurrent writers of the same content serialise on a per-digest lock file; readers verify the
content again on every use, so a file corrupted on disk is noticed and replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.errors import FetchError
from pybuild.support.fsutil import AtomicFile, reclaim_stale
from pybuild.support.net import TransientError

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Want:
    """The identity of a file the cache should hold."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A file whose digest is not known yet (a lock being made from an index without hashes)."""

    filename: str


def default_cache_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """Where pybuild caches: ``$PYBUILD_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/pybuild``, else
    ``~/.cache/pybuild``. `env` defaults to the process environment."""
    env = os.environ if env is None else env
    if env.get("PYBUILD_CACHE_DIR"):
        return Path(env["PYBUILD_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pybuild"


def file_sha256(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, in one streaming pass."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Cache:
    """The content-addressed cache under `root`: files in ``sha256/<first 2 digits>/<digest>``, the
    per-digest locks in ``locks/`` and temporary files in ``tmp/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the file with this digest is stored, whether or not it is there."""
        return self.root / "sha256" / sha256[:2] / sha256

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        """Hold the per-digest lock: one writer per content at a time, across processes."""
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / f"{sha256}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lookup(self, want: Want) -> tuple[Path | None, str | None]:
        """The cached path if it holds exactly `want`'s bytes; a corrupt entry is deleted.

        Returns (path, None) on a hit, (None, None) when absent and (None, reason) when an entry
        was found corrupt and removed.
        """
        path = self.path(want.sha256)
        try:
            sha256, size = file_sha256(path)
        except FileNotFoundError:
            return None, None
        if sha256 == want.sha256 and size == want.size:
            return path, None
        path.unlink(missing_ok=True)
        return None, (
            f"cached {want.filename} was corrupt (sha256 {sha256}, {size} bytes); removed it"
        )

    def size_if_holds(self, sha256: str) -> int | None:
        """The size of the cached file with this digest, if it is there and intact."""
        try:
            actual, size = file_sha256(self.path(sha256))
        except FileNotFoundError:
            return None
        return size if actual == sha256 else None

    def store(
        self,
        want: Want | Unknown,
        source: str,
        read: Callable[[], bytes],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[Path, str, int]:
        """Write the chunks `read()` returns (until b"") into the cache if they are `want`.

        Returns (path, sha256, size). Raises `TransientError` for a short body (worth retrying)
        and `FetchError` for wrong content; in both cases nothing is left behind.
        """
        with AtomicFile(self.root / "tmp", "download") as out:
            sha256, size = _copy_verified(want, source, read, out.handle, progress)
            final = self.path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            out.commit(final)
        return final, sha256, size

    def reclaim(self) -> int:
        """Remove what killed pybuild processes left in the cache's temporary directory."""
        return reclaim_stale(self.root / "tmp")


class ShortBodyError(TransientError):
    """The content ended before the pinned size: a network hiccup for a download."""

    def __init__(self, message: str, *, expected: int, got: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


def _copy_verified(
    want: Want | Unknown,
    source: str,
    read: Callable[[], bytes],
    handle: BinaryIO,
    progress: Callable[[int], None] | None,
) -> tuple[str, int]:
    """Copy chunks to `handle`, hashing them; check size and sha256 against `want`."""
    limit = want.size if isinstance(want, Want) else None
    digest = hashlib.sha256()
    size = 0
    while chunk := read():
        size += len(chunk)
        if limit is not None and size > limit:
            raise FetchError(
                f"{want.filename}: size mismatch: expected {limit} bytes, got more from {source}"
            )
        digest.update(chunk)
        handle.write(chunk)
        if progress is not None:
            progress(len(chunk))
    if limit is not None and size < limit:
        raise ShortBodyError(
            f"{want.filename}: truncated: expected {limit} bytes, got {size} from {source}",
            expected=limit,
            got=size,
        )
    actual = digest.hexdigest()
    if isinstance(want, Want) and actual != want.sha256:
        raise FetchError(
            f"{want.filename}: sha256 mismatch: expected {want.sha256}, got {actual} from {source}"
        )
    return actual, size
