"""Everything pybuild prints while it works goes through here, to stderr, via rich."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pybuild.errors import PybuildError

LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


class Ui:
    """pybuild's output on stderr, through rich: messages, warnings, errors and progress. `quiet`
    hides messages and progress, never warnings or errors."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        """Print a message as it is (no rich markup), unless quiet."""
        if not self.quiet:
            self.console.print(message, markup=False)

    def warn(self, message: str) -> None:
        """Print ``warning: <message>`` in yellow, even when quiet."""
        self.console.print(f"warning: {message}", markup=False, style="yellow")

    def error(self, err: PybuildError) -> None:
        """``error: <one line>``, then each detail on its own line."""
        style = "red" if err.exit_code == 2 else None
        self.console.print(f"error: {err}", markup=False, soft_wrap=True, style=style)
        for detail in err.details:
            self.console.print(f"  {detail}", markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def _log_progress(
        self, description: str, total: int, unit: Callable[[int], str]
    ) -> Iterator[Callable[[int], None]]:
        """Progress for a log, not a terminal: a line every `LOG_EVERY` seconds of work."""
        done = 0
        last = time.monotonic()

        def advance(n: int) -> None:
            nonlocal done, last
            with self._lock:
                done += n
                now = time.monotonic()
                if now - last >= LOG_EVERY:
                    last = now
                    self.info(f"{description}: {done / total:.0%} ({unit(done)} of {unit(total)})")

        yield advance

    @contextlib.contextmanager
    def transfer(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A byte progress bar; yields a thread-safe `advance(n)` (n may be negative)."""
        if self.quiet or total <= 0:
            yield lambda _n: None
            return
        if not self.console.is_terminal:
            with self._log_progress(description, total, lambda n: f"{n / 1e6:.1f} MB") as advance:
                yield advance
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)

            def advance(n: int) -> None:
                with self._lock:
                    progress.advance(task, n)

            yield advance

    @contextlib.contextmanager
    def steps(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A counted progress bar for long local work (n items done so far); on a terminal only,
        and a line with the time taken when it ends."""
        started = time.monotonic()
        if self.quiet or total <= 0:
            yield lambda _n: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)

            def update(done: int) -> None:
                with self._lock:
                    progress.update(task, completed=done)

            yield update
        self.info(f"{description}: {total:,} done in {time.monotonic() - started:.1f} s")
