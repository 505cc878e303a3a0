"""The fetch stage: put every input of a lock into the cache, with exactly the pinned bytes.

Sources, in order: the cache itself (verified), a directory given with ``--from`` (matched by
sha256), then the network: the runtime's and compilers' files from their URLs (a Debian package
from the configured mirror by its pool path), each wheel from wherever the configured index lists
its filename. ``--offline`` stops before the network.

Downloads run in daemon threads while the main thread waits in short slices, so Ctrl-C is seen at
once: `pybuild.support.net.CANCELLED` stops every transfer at its next chunk and every retry, and
the command line removes the partial files (`AtomicFile.discard_open`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pybuild.errors import FetchError
from pybuild.model.lockfile import Lock, LockedFile, LockedWheel
from pybuild.model.target import Arch
from pybuild.support.cache import Cache, ShortBodyError, Unknown, Want, file_sha256
from pybuild.support.index import Indexes, IndexFile, project_files
from pybuild.support.net import (
    CANCELLED,
    CancelledError,
    NotFoundError,
    RetryPolicy,
    TransientError,
    is_local,
    open_url,
    read_chunks,
)
from pybuild.ui import Ui

_MAX_LISTED = 5
DEBIAN_EXAMPLE = "`pybuild build --layer examples/debian12-arm64/layer.toml`"
Kind = Literal["runtime", "compiler", "wheel", "sysroot"]


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file a build needs, pinned by `want`: a wheel is looked up on the index by its `project`
    at fetch time, anything else is downloaded from `urls`, tried in order."""

    kind: Kind
    want: Want
    project: str | None = None  # wheels: the project whose index page lists the file
    urls: tuple[str, ...] = ()  # everything else: tried in order
    debian: bool = False  # a Debian pool file: "not found" means the archive dropped it

    @classmethod
    def for_file(
        cls, file: LockedFile, kind: Kind, mirrors: Mapping[str, str], url: str | None = None
    ) -> Artifact:
        """A runtime or compiler file of a lock; `url` replaces its own (``--runtime-url``)."""
        want = Want(file.filename, file.sha256, file.size)
        if file.debian is not None:
            from pybuild.runtimes.debian_archive import mirror_url

            url = mirror_url(mirrors, file.debian.archive, file.debian.path)
            return cls(kind, want, urls=(url,), debian=True)
        assert file.url is not None  # noqa: S101 - a locked file has a url or a Debian origin
        return cls(kind, want, urls=(url or file.url,))

    @classmethod
    def for_wheel(cls, wheel: LockedWheel) -> Artifact:
        """A locked wheel, to be found on the configured index's page for its project."""
        return cls("wheel", Want(wheel.filename, wheel.sha256, wheel.size), project=wheel.name)


@dataclass(frozen=True, slots=True)
class Fetched:
    """Where an artifact is in the cache, and how it got there."""

    artifact: Artifact
    path: Path
    how: Literal["cached", "seeded", "downloaded"]


def lock_artifacts(
    lock: Lock,
    *,
    host: Arch | None,
    mirrors: Mapping[str, str],
    runtime_url: str | None = None,
) -> list[Artifact]:
    """What a build of `lock` on a `host` machine needs: the runtime, the compiler pinned for
    that host (if any; None: no compiler), and the wheels. A file needed twice is listed once."""
    single = len(lock.runtime.files) == 1
    artifacts = [
        Artifact.for_file(f, "runtime", mirrors, runtime_url if single else None)
        for f in lock.runtime.files
    ]
    compiler = lock.compiler(host) if host is not None else None
    seen = {a.want.sha256 for a in artifacts}
    for file in compiler.files if compiler is not None else ():
        if file.sha256 not in seen:
            artifacts.append(Artifact.for_file(file, "compiler", mirrors))
            seen.add(file.sha256)
    artifacts += [Artifact.for_wheel(w) for w in sorted(lock.wheels, key=lambda w: w.name)]
    return artifacts


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


@dataclass
class Seeding:
    """What ``--from DIR`` provided, and why it did not provide the rest."""

    seeded: set[str] = field(default_factory=set)  # sha256 of the artifacts found
    near_misses: dict[str, list[str]] = field(default_factory=dict)  # sha256 -> why not

    def why_not(self, artifact: Artifact) -> str:
        """Why ``--from`` lacked `artifact`: up to three near misses, or no file of its size."""
        reasons = self.near_misses.get(artifact.want.sha256)
        if reasons:
            return "; ".join(reasons[:3])
        return f"no file of {artifact.want.size:,} bytes"


def seed_from_directory(cache: Cache, directory: Path, wanted: list[Artifact]) -> Seeding:
    """Copy every file of `directory` (recursively) whose sha256 an artifact wants into the cache.

    Files are hashed only when their size matches a wanted size; a file named like an artifact
    but with other content is remembered, so the error can say why it was not taken.
    """
    if not directory.is_dir():
        raise FetchError(f"--from {directory}: not a directory")
    by_size: dict[int, list[Artifact]] = {}
    by_name = {a.want.filename: a for a in wanted}
    for artifact in wanted:
        by_size.setdefault(artifact.want.size, []).append(artifact)
    result = Seeding()
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue  # a dangling link: nothing to seed from
            named = by_name.get(name)
            candidates = [a for a in by_size.get(size, []) if a.want.sha256 not in result.seeded]
            if named is not None and named.want.size != size:
                result.near_misses.setdefault(named.want.sha256, []).append(
                    f"{path} has {size:,} bytes, the lock pins {named.want.size:,}"
                )
            if not candidates:
                continue
            sha256, _ = file_sha256(path)
            for artifact in candidates:
                if artifact.want.sha256 == sha256:
                    with cache.locked(sha256), path.open("rb") as handle:
                        cache.store(artifact.want, f"--from {path}", read_chunks(handle))
                    result.seeded.add(sha256)
                elif artifact is named:
                    result.near_misses.setdefault(artifact.want.sha256, []).append(
                        f"{path} has sha256 {sha256}, the lock pins {artifact.want.sha256}"
                    )
    return result


def _find_wheel_url(artifact: Artifact, indexes: Indexes, retry: RetryPolicy) -> str:
    assert artifact.project is not None  # noqa: S101 - wheels always name their project
    unreachable: list[str] = []
    for index_url in indexes.urls:
        try:
            files = project_files(index_url, artifact.project, retry)
        except (OSError, TransientError, ValueError) as err:
            unreachable.append(f"{index_url} ({err})")
            continue
        match: IndexFile | None = next(
            (f for f in files if f.filename == artifact.want.filename), None
        )
        if match is None:
            continue
        if match.sha256 is not None and match.sha256 != artifact.want.sha256:
            raise FetchError(
                f"{artifact.want.filename}: the index {index_url} lists sha256 "
                f"{match.sha256}, but the lock pins {artifact.want.sha256}"
            )
        return match.url
    where = ", ".join(indexes.urls)
    detail = f"; unreachable: {'; '.join(unreachable)}" if unreachable else ""
    raise FetchError(
        f"{artifact.want.filename}: not found on the configured index ({where}, "
        f"from {indexes.source}){detail}"
    )


def download(
    want: Want | Unknown,
    url: str,
    cache: Cache,
    *,
    retry: RetryPolicy,
    ui: Ui,
    advance: Callable[[int], None] = lambda _n: None,
) -> tuple[Path, str, int]:
    """Download `url` into the cache, retrying transient failures; returns (path, sha256, size).

    A local file is read once: a short one is the wrong file, not a network hiccup.
    """
    from urllib.parse import urlsplit

    scheme = urlsplit(url).scheme
    if scheme not in ("https", "http", "file"):
        raise FetchError(f"{want.filename}: unsupported URL scheme in {url!r}")

    def attempt() -> tuple[Path, str, int]:
        done = 0

        def counted(n: int) -> None:
            nonlocal done
            done += n
            advance(n)

        try:
            with open_url(url) as response:
                return cache.store(want, url, read_chunks(response), counted)
        except TransientError:
            advance(-done)
            raise

    def on_retry(err: Exception) -> None:
        ui.warn(f"{want.filename}: {err}; retrying")

    if is_local(url):
        try:
            return attempt()
        except ShortBodyError as err:
            raise FetchError(
                f"{want.filename}: {url} has {err.got:,} bytes, the lock pins {err.expected:,}: "
                "it is not the pinned file"
            ) from None
        except TransientError as err:
            raise FetchError(f"{want.filename}: {url}: {err}") from None
    return retry.run(attempt, on_retry)


def _obtain(
    artifact: Artifact,
    cache: Cache,
    *,
    indexes: Indexes,
    retry: RetryPolicy,
    ui: Ui,
    advance: Callable[[int], None],
) -> Fetched:
    with cache.locked(artifact.want.sha256):
        # Another process may have fetched it while this one waited for the lock.
        path, _ = cache.lookup(artifact.want)
        if path is not None:
            advance(artifact.want.size)
            return Fetched(artifact, path, "cached")
        urls = artifact.urls or (_find_wheel_url(artifact, indexes, retry),)
        problems = []
        for url in urls:
            try:
                path = download(artifact.want, url, cache, retry=retry, ui=ui, advance=advance)[0]
                return Fetched(artifact, path, "downloaded")
            except NotFoundError as err:
                if artifact.debian:
                    raise FetchError(
                        f"{artifact.want.filename} is no longer in the Debian archive ({url}: "
                        f"{err}): a point release or security update replaced it; run "
                        "`pybuild lock` to pin the current one"
                    ) from None
                problems.append(f"{url} ({err})")
            except (OSError, TransientError) as err:
                problems.append(f"{url} ({err})")
        tried = "; ".join(problems)
        if artifact.kind in ("runtime", "compiler") and not artifact.debian:
            raise FetchError(
                f"cannot download the {artifact.kind} {artifact.want.filename} from {tried}: "
                "download it where that URL is reachable and pass --from DIR (files are matched "
                f"by sha256 {artifact.want.sha256}), or --runtime-url URL for a mirror; without "
                f"GitHub, {DEBIAN_EXAMPLE} builds with Debian's Python instead"
            )
        raise FetchError(f"{artifact.want.filename}: cannot download from {tried}")


def _run_all(
    missing: list[Artifact],
    jobs: int,
    work: Callable[[Artifact, Callable[[int], None]], Fetched],
    advance: Callable[[int], None],
) -> tuple[dict[str, Fetched], list[str]]:
    """Run `work` for each artifact in `jobs` daemon threads; the caller's thread only waits, in
    short slices, so an interrupt reaches it at once."""
    todo: queue.Queue[Artifact] = queue.Queue()
    for artifact in missing:
        todo.put(artifact)
    done: queue.Queue[tuple[Artifact, Fetched | str]] = queue.Queue()

    def worker() -> None:
        while not CANCELLED.is_set():
            try:
                artifact = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((artifact, work(artifact, advance)))
            except FetchError as err:
                done.put((artifact, str(err)))
            except CancelledError:
                return
            except BaseException as err:  # noqa: BLE001 - reported by the waiting thread
                done.put((artifact, f"{artifact.want.filename}: {type(err).__name__}: {err}"))

    for _ in range(max(1, min(jobs, len(missing)))):
        threading.Thread(target=worker, daemon=True, name="pybuild-fetch").start()
    results: dict[str, Fetched] = {}
    errors: list[str] = []
    for _ in missing:
        while True:
            try:
                artifact, outcome = done.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        if isinstance(outcome, str):
            errors.append(outcome)
        else:
            results[artifact.want.sha256] = outcome
    return results, errors


def fetch_artifacts(
    artifacts: list[Artifact],
    cache: Cache,
    *,
    indexes: Indexes,
    ui: Ui,
    offline: bool = False,
    seed_dir: Path | None = None,
    jobs: int = 4,
    retry: RetryPolicy | None = None,
) -> list[Fetched]:
    """Make the cache hold every artifact; return where each one is and how it came."""
    retry = retry or RetryPolicy()
    cache.reclaim()
    results: dict[str, Fetched] = {}
    missing: list[Artifact] = []
    for artifact in artifacts:
        path, corrupt = cache.lookup(artifact.want)
        if corrupt:
            ui.warn(corrupt)
        if path is None:
            missing.append(artifact)
        else:
            results[artifact.want.sha256] = Fetched(artifact, path, "cached")

    seeding = None
    if missing and seed_dir is not None:
        seeding = seed_from_directory(cache, seed_dir, missing)
        for artifact in missing:
            if artifact.want.sha256 in seeding.seeded:
                results[artifact.want.sha256] = Fetched(
                    artifact, cache.path(artifact.want.sha256), "seeded"
                )
        missing = [a for a in missing if a.want.sha256 not in seeding.seeded]

    if missing and offline:
        if seeding is not None:
            raise FetchError(
                f"--offline: {len(missing)} artifact(s) are neither in the cache nor in "
                f"--from {seed_dir}",
                [f"{a.want.filename}: {seeding.why_not(a)}" for a in missing],
            )
        names = [a.want.filename for a in missing]
        raise FetchError(
            f"--offline: {len(missing)} artifact(s) not in the cache {cache.root}: "
            f"{_listing(names)}; supply them with --from DIR"
        )

    if missing:
        total = sum(a.want.size for a in missing)
        with ui.transfer(f"fetching {len(missing)} artifacts", total) as advance:
            fetched, errors = _run_all(
                missing,
                jobs,
                lambda a, adv: _obtain(a, cache, indexes=indexes, retry=retry, ui=ui, advance=adv),
                advance,
            )
        results.update(fetched)
        if errors:
            details = errors
            if seeding is not None:
                details = [
                    *errors,
                    *(
                        f"--from {seed_dir}: {a.want.filename}: {seeding.why_not(a)}"
                        for a in missing
                        if a.want.sha256 not in results
                    ),
                ]
            raise FetchError(
                f"{len(errors)} of {len(artifacts)} artifacts could not be fetched", details
            )
    return [results[a.want.sha256] for a in artifacts]
