"""File-system helpers shared by every stage: nothing is ever half-written, nothing stale is kept.

`AtomicFile` is the one way pybuild writes a file others may read (the zip, reports, lock.json,
cache entries): a temporary file beside the destination, flushed and fsynced, renamed into place
only on success and removed on any failure (Ctrl-C included). While it is being written its
writer holds an exclusive `flock` on it, so `reclaim_stale` can tell the temporary file of a
process killed with SIGKILL (lock free) from one still being written (lock held) and remove only
the former. `WorkDir` does the same for temporary directories.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

PARTIAL_SUFFIX = ".partial"
WORKDIR_LOCK = ".pybuild-lock"
# A temporary file or directory younger than this is never reclaimed: its writer may not have
# taken its lock yet.
_RECLAIM_AFTER_SECONDS = 5.0


_OPEN_LOCK = threading.Lock()
_OPEN_FILES: set[Path] = set()  # temporary files being written, by any thread
_OPEN_DIRS: set[Path] = set()  # work directories in use


def discard_open() -> None:
    """Remove every temporary file and work directory of this process (Ctrl-C: the threads
    that write them may be blocked in a read and never get to clean up themselves)."""
    with _OPEN_LOCK:
        files, dirs = list(_OPEN_FILES), list(_OPEN_DIRS)
        _OPEN_FILES.clear()
        _OPEN_DIRS.clear()
    for path in files:
        with contextlib.suppress(OSError):
            path.unlink()
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


class AtomicFile:
    """A file written beside `destination` and renamed over it by `commit`.

    Used as a context manager: leaving the block without `commit` (an exception, a return)
    removes the temporary file. `destination` may be given at `commit` time instead (the cache
    learns a file's name from its content).
    """

    def __init__(self, directory: Path, name: str = "file") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=PARTIAL_SUFFIX)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.path = Path(tmp_name)
        with _OPEN_LOCK:
            _OPEN_FILES.add(self.path)
        self.handle: BinaryIO = os.fdopen(fd, "wb")
        self._done = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._done:
            self.discard()

    def write(self, data: bytes) -> None:
        """Append `data` to the temporary file."""
        self.handle.write(data)

    def commit(self, destination: Path, mode: int = 0o644) -> None:
        """Flush, fsync, set `mode` and rename over `destination` (same file system)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        os.fchmod(self.handle.fileno(), mode)
        try:
            self.path.replace(destination)
        except BaseException:
            self.discard()
            raise
        self._done = True
        self.handle.close()  # releases the lock
        with _OPEN_LOCK:
            _OPEN_FILES.discard(self.path)

    def discard(self) -> None:
        """Close and remove the temporary file; the destination is untouched. Safe to call twice."""
        self._done = True
        self.handle.close()
        self.path.unlink(missing_ok=True)
        with _OPEN_LOCK:
            _OPEN_FILES.discard(self.path)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through an `AtomicFile`."""
    with AtomicFile(path.parent, path.name) as out:
        out.write(data)
        out.commit(path, mode)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` as UTF-8 through an `AtomicFile`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


class WorkDir:
    """A temporary directory under `parent`, removed on exit, and reclaimable if its process dies.

    A lock file inside it is held (flock) for the directory's life.
    """

    def __init__(self, parent: Path, prefix: str) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
        fd = os.open(self.path / WORKDIR_LOCK, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd: int | None = fd
        with _OPEN_LOCK:
            _OPEN_DIRS.add(self.path)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the directory and release its lock; safe to call twice."""
        shutil.rmtree(self.path, ignore_errors=True)
        with _OPEN_LOCK:
            _OPEN_DIRS.discard(self.path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _is_abandoned(path: Path) -> bool:
    """Whether nobody holds the lock of a temporary file or work directory at `path`."""
    lock = path / WORKDIR_LOCK if path.is_dir() and not path.is_symlink() else path
    try:
        if time.time() - lock.lstat().st_mtime < _RECLAIM_AFTER_SECONDS:
            return False
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its writer is alive
    finally:
        os.close(fd)
    return True


def reclaim_stale(directory: Path, *, prefix: str = "") -> int:
    """Remove the temporary files and work directories that killed processes left in
    `directory` (names starting with `prefix`, ending in `.partial` or holding a work-directory
    lock); returns how many. Never touches anything else."""
    try:
        paths = sorted(directory.iterdir())
    except OSError:
        return 0
    removed = 0
    for path in paths:
        name = path.name
        if not name.startswith(prefix):
            continue
        is_dir = path.is_dir() and not path.is_symlink()
        if not (name.endswith(PARTIAL_SUFFIX) or (is_dir and (path / WORKDIR_LOCK).exists())):
            continue
        if _is_abandoned(path):
            with contextlib.suppress(OSError):
                if is_dir:
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
    return removed


def resolve_path(path: Path, *, strict: bool = False) -> Path:
    """`path` made absolute with every link resolved (`Path.resolve`); a loop of links is an
    OSError naming `path` (ELOOP), not the RuntimeError of Python 3.11's `Path.resolve`."""
    try:
        return path.resolve(strict=strict)
    except RuntimeError:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None


def tree_entries(root: Path) -> list[str]:
    """Every file and symbolic link below `root` (links to directories too, not followed),
    as sorted '/'-separated paths relative to it. The one walk of a tree pybuild makes."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        found += [(base / name).relative_to(root).as_posix() for name in names]
    return sorted(found)


def check_writable_directory(path: Path, what: str) -> None:
    """Create `path` if needed and prove a file can be written in it; raise OSError otherwise.

    Run before long work, so that a bad ``--out`` or cache fails in the first second, not after
    the whole build.
    """
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: {what} is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, "probe"):
        pass
