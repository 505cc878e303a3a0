"""Reading the files a user hands pybuild: layer.toml, requirements.txt, lock.json, rule files.

Whatever such a file holds, reading and parsing it ends in its text and data or in one line saying
what is wrong, never a hang or a traceback. Only a regular file is read, opened without blocking
and checked before its first byte (a FIFO or ``/dev/zero`` would otherwise be read forever), and
only up to `MAX_INPUT_BYTES`. A parser's own limits (a number of more digits than Python converts,
arrays nested past the recursion limit) come out as a `ValueError` with a one-line reason, like a
syntax error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Far above any real layer.toml, requirements.txt or lock.json (the reference lock is 6 KB).
MAX_INPUT_BYTES = 16 * 1024 * 1024
_BOM = "\ufeff"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a file of `mode` is, for a message: "a FIFO", "a directory", ..."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, *, follow_links: bool = True) -> int:
    """A read-only descriptor of `path`, which must be a regular file: opened with O_NONBLOCK
    (opening a FIFO waits for no writer) and checked with fstat before anything is read.

    Raises OSError: the open's own (FileNotFoundError, PermissionError, ELOOP for a link when
    `follow_links` is false) or EINVAL "not a regular file (a FIFO)" naming `path`.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))
    return fd


def read_input(path: Path, limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of the regular file `path` (a leading byte-order mark dropped, as pip does),
    of at most `limit` bytes.

    Raises OSError (FileNotFoundError when it is missing; EINVAL when it is not a regular file;
    EFBIG when it is larger than `limit`) or UnicodeDecodeError; `read_failure` words either.
    """
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
    return data.decode("utf-8").removeprefix(_BOM)


def read_failure(err: OSError | UnicodeDecodeError) -> str:
    """Why `read_input` failed, in one line without the path (the caller names it)."""
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
    return err.strerror or str(err) or type(err).__name__


def _parsed(loads: Callable[[str], Any], text: str) -> Any:
    """`loads(text)`, raising only ValueError with a one-line message: the parser's own syntax
    error, or its limits (RecursionError, a too long integer) said plainly."""
    try:
        return loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as err:
        if "integer string conversion" in str(err):  # sys.get_int_max_str_digits()
            reason = f"a number of more than {sys.get_int_max_str_digits()} digits"
            raise ValueError(reason) from None
        if isinstance(err, (json.JSONDecodeError, tomllib.TOMLDecodeError)):
            raise
        raise ValueError(str(err).partition("\n")[0] or type(err).__name__) from None


def parse_toml(text: str) -> dict[str, Any]:
    """`tomllib.loads`, raising only ValueError (`tomllib.TOMLDecodeError`, or a parser limit)."""
    parsed: dict[str, Any] = _parsed(tomllib.loads, text)
    return parsed


def parse_json(text: str) -> Any:
    """`json.loads`, raising only ValueError (`json.JSONDecodeError`, or a parser limit)."""
    return _parsed(json.loads, text)
