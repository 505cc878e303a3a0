"""The one exception root of pybuild.

Every error a user can cause (bad input, unreachable index, wrong hash) is a `PybuildError` whose
message is a single line fit to print after ``error:``; where there are several problems the
message summarises them and `details` lists them, one line each. Anything else escaping is a bug
in pybuild and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class PybuildError(Exception):
    """A failure the user can act on; ``str(err)`` is one line, no traceback is shown."""

    exit_code = 2

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)


class ConfigError(PybuildError):
    """`layer.toml` or `requirements.txt` is malformed."""


class LockError(PybuildError):
    """The requirements cannot be locked for the target, or a lock file is invalid."""


class FetchError(PybuildError):
    """An artifact cannot be obtained with the bytes the lock pins."""


class CheckError(PybuildError):
    """A check ran and found problems (exit code 1, unlike a tool failure)."""

    exit_code = 1
