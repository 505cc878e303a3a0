"""Opening URLs (https, http, file) with one user agent and one retry policy.

Only the standard library: the bytes are verified by sha256 afterwards, so the transport needs no
features beyond proxies (urllib honours ``https_proxy``) and the system's CA store.

What is worth retrying: a 5xx or 429, a connection reset, a timeout, a body cut short by the
network. What is not: a 4xx, a name that does not resolve, a local file that is missing or has
other bytes, anything after the user pressed Ctrl-C (`CANCELLED`, set by the command line, stops
every download between two chunks and every wait between two attempts).
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Protocol, Self, TypeVar

from pybuild import __version__

USER_AGENT = f"pybuild/{__version__}"
# Seconds a connection may stay silent: a stalled server fails the attempt, not the whole build.
TIMEOUT_SECONDS = 30
CANCELLED = threading.Event()

T = TypeVar("T")


class Response(Protocol):
    """What `urlopen` returns for every scheme: a readable body with headers."""

    headers: Message

    def read(self, amt: int = ..., /) -> bytes:
        """Up to `amt` bytes of the body (without `amt`: all of it); b"" at the end."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class TransientError(Exception):
    """A failure worth retrying: the network, a 5xx, a truncated body."""


class NotFoundError(OSError):
    """The server answered 404 or 410: the file is not (or no longer) there."""


class CancelledError(Exception):
    """The user interrupted pybuild (Ctrl-C): stop, do not retry."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to try an action that fails transiently (`attempts` in all), and the wait in
    seconds before the second attempt, doubled before each later one."""

    attempts: int = 4
    backoff_seconds: float = 1.0  # doubled after every failed attempt

    def run(
        self,
        action: Callable[[], T],
        on_retry: Callable[[Exception], None] | None = None,
    ) -> T:
        """Run `action`; retry it on `TransientError` with exponential backoff, never after an
        interrupt."""
        delay = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            if CANCELLED.is_set():
                raise CancelledError
            try:
                return action()
            except TransientError as err:
                if attempt == self.attempts or CANCELLED.is_set():
                    raise
                if on_retry is not None:
                    on_retry(err)
                if CANCELLED.wait(delay):
                    raise CancelledError from None
                delay *= 2
        raise AssertionError("unreachable")


def is_local(url: str) -> bool:
    """Whether `url` is a ``file:`` URL."""
    return urllib.parse.urlsplit(url).scheme == "file"


def open_url(url: str, *, accept: str | None = None) -> Response:
    """Open `url` for reading; raise `TransientError` for retryable failures, OSError otherwise
    (`NotFoundError` for a 404)."""
    headers = {"User-Agent": USER_AGENT}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - schemes checked by callers
    try:
        response: Response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise TransientError(f"HTTP {err.code} {err.reason}") from err
        if err.code in (404, 410):
            raise NotFoundError(f"HTTP {err.code} {err.reason}") from None
        raise OSError(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname
            raise OSError(f"cannot resolve {host} ({reason.strerror})") from None
        if isinstance(reason, FileNotFoundError) and is_local(url):
            raise NotFoundError(reason.strerror or str(reason)) from None
        if isinstance(reason, OSError) and is_local(url):
            raise OSError(reason.strerror or str(reason)) from None
        if isinstance(reason, FileNotFoundError | IsADirectoryError | PermissionError):
            raise OSError(str(reason)) from None
        raise TransientError(str(reason)) from err
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise TransientError(str(err) or type(err).__name__) from err
    return response


class Readable(Protocol):
    """A source of bytes read in chunks: a response, an open file."""

    def read(self, amt: int, /) -> bytes:
        """Up to `amt` bytes; b"" at the end."""
        ...


def read_chunks(source: Readable, chunk_size: int = 1 << 20) -> Callable[[], bytes]:
    """A chunk reader that turns mid-body connection failures into `TransientError` and stops
    at the next chunk once pybuild is interrupted."""

    def read() -> bytes:
        if CANCELLED.is_set():
            raise CancelledError
        try:
            return source.read(chunk_size)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise TransientError(str(err) or type(err).__name__) from err

    return read
