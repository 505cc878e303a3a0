"""Opening URLs (https, http, file) with one user agent and one retry policy.

Only the standard library: the bytes are verified by sha256 afterwards, so the transport needs no
features beyond proxies (urllib honours ``https_proxy``) and the system's CA store.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Protocol, Self, TypeVar

from pybuild import __version__

USER_AGENT = f"pybuild/{__version__}"
TIMEOUT_SECONDS = 60

T = TypeVar("T")


class Response(Protocol):
    """What `urlopen` returns for every scheme: a readable body with headers."""

    headers: Message

    def read(self, amt: int = ..., /) -> bytes: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class TransientError(Exception):
    """A failure worth retrying: the network, a 5xx, a truncated body."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    backoff_seconds: float = 1.0  # doubled after every failed attempt

    def run(
        self,
        action: Callable[[], T],
        on_retry: Callable[[Exception], None] | None = None,
    ) -> T:
        """Run `action`; retry it on `TransientError` with exponential backoff."""
        delay = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            try:
                return action()
            except TransientError as err:
                if attempt == self.attempts:
                    raise
                if on_retry is not None:
                    on_retry(err)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def open_url(url: str, *, accept: str | None = None) -> Response:
    """Open `url` for reading; raise `TransientError` for retryable failures, OSError otherwise."""
    headers = {"User-Agent": USER_AGENT}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - schemes checked by callers
    try:
        response: Response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise TransientError(f"HTTP {err.code} {err.reason}") from err
        raise OSError(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, FileNotFoundError | IsADirectoryError | PermissionError):
            raise OSError(str(err.reason)) from None
        raise TransientError(str(err.reason)) from err
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise TransientError(str(err) or type(err).__name__) from err
    return response


class Readable(Protocol):
    def read(self, amt: int, /) -> bytes: ...


def read_chunks(source: Readable, chunk_size: int = 1 << 20) -> Callable[[], bytes]:
    """A chunk reader that turns mid-body connection failures into `TransientError`."""

    def read() -> bytes:
        try:
            return source.read(chunk_size)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise TransientError(str(err) or type(err).__name__) from err

    return read
