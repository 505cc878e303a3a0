"""File-system helpers shared by every stage: nothing is ever half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def tree_entries(root: Path) -> list[str]:
    """Every file and symbolic link below `root` (links to directories too, not followed),
    as sorted '/'-separated paths relative to it."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        found += [(base / name).relative_to(root).as_posix() for name in names]
    return sorted(found)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)
