"""The fetch stage: put every artifact of a lock into the cache, with exactly the pinned bytes.

Sources, in order: the cache itself (verified), a directory given with ``--from`` (matched by
sha256), then the network: the runtime from its URL, each wheel from wherever the configured index
lists its filename. ``--offline`` stops before the network.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pybuild.errors import FetchError
from pybuild.model.lockfile import Lock
from pybuild.support.cache import Cache, Unknown, Want, file_sha256
from pybuild.support.index import Indexes, IndexFile, project_files
from pybuild.support.net import RetryPolicy, TransientError, open_url, read_chunks
from pybuild.ui import Ui

_MAX_LISTED = 5


@dataclass(frozen=True, slots=True)
class Artifact:
    kind: Literal["runtime", "wheel"]
    want: Want
    project: str | None = None  # wheels: the project whose index page lists the file
    url: str | None = None  # the runtime: where it is downloaded from


@dataclass(frozen=True, slots=True)
class Fetched:
    artifact: Artifact
    path: Path
    how: Literal["cached", "seeded", "downloaded"]


def lock_artifacts(lock: Lock, runtime_url: str | None = None) -> list[Artifact]:
    runtime = lock.runtime
    artifacts = [
        Artifact(
            "runtime",
            Want(runtime.filename, runtime.sha256, runtime.size),
            url=runtime_url or runtime.url,
        )
    ]
    artifacts += [
        Artifact("wheel", Want(w.filename, w.sha256, w.size), project=w.name)
        for w in sorted(lock.wheels, key=lambda w: w.name)
    ]
    return artifacts


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def seed_from_directory(cache: Cache, directory: Path, wanted: list[Artifact]) -> set[str]:
    """Copy every file of `directory` (recursively) whose sha256 an artifact wants into the cache.

    Returns the digests seeded. Files are hashed only when their size matches a wanted size.
    """
    if not directory.is_dir():
        raise FetchError(f"--from {directory}: not a directory")
    by_size: dict[int, list[Artifact]] = {}
    for artifact in wanted:
        by_size.setdefault(artifact.want.size, []).append(artifact)
    seeded: set[str] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue  # a dangling link: nothing to seed from
            candidates = [a for a in by_size.get(size, []) if a.want.sha256 not in seeded]
            if not candidates:
                continue
            sha256, _ = file_sha256(path)
            for artifact in candidates:
                if artifact.want.sha256 == sha256:
                    with cache.locked(sha256), path.open("rb") as handle:
                        cache.store(artifact.want, f"--from {path}", read_chunks(handle))
                    seeded.add(sha256)
    return seeded


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
    """Download `url` into the cache, retrying transient failures; returns (path, sha256, size)."""
    scheme = urllib.parse.urlsplit(url).scheme
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
        if artifact.kind == "runtime":
            assert artifact.url is not None  # noqa: S101 - the runtime always has a URL
            url = artifact.url
            try:
                path = download(artifact.want, url, cache, retry=retry, ui=ui, advance=advance)[0]
            except (OSError, TransientError) as err:
                raise FetchError(
                    f"cannot download the runtime {artifact.want.filename} from {url} ({err}); "
                    "fetch it where that URL is reachable and run `pybuild fetch --from DIR` "
                    f"(files are matched by sha256 {artifact.want.sha256}), or point "
                    "--runtime-url at a mirror or a file:// copy"
                ) from None
        else:
            url = _find_wheel_url(artifact, indexes, retry)
            try:
                path = download(artifact.want, url, cache, retry=retry, ui=ui, advance=advance)[0]
            except (OSError, TransientError) as err:
                raise FetchError(
                    f"{artifact.want.filename}: cannot download from {url} ({err})"
                ) from None
        return Fetched(artifact, path, "downloaded")


def fetch(
    lock: Lock,
    cache: Cache,
    *,
    indexes: Indexes,
    ui: Ui,
    offline: bool = False,
    seed_dir: Path | None = None,
    runtime_url: str | None = None,
    jobs: int = 4,
    retry: RetryPolicy | None = None,
) -> list[Fetched]:
    """Make the cache hold every artifact of `lock`; return where each one is and how it came."""
    return fetch_artifacts(
        lock_artifacts(lock, runtime_url),
        cache,
        indexes=indexes,
        ui=ui,
        offline=offline,
        seed_dir=seed_dir,
        jobs=jobs,
        retry=retry,
    )


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
    retry = retry or RetryPolicy()
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

    if missing and seed_dir is not None:
        seeded = seed_from_directory(cache, seed_dir, missing)
        for artifact in missing:
            if artifact.want.sha256 in seeded:
                results[artifact.want.sha256] = Fetched(
                    artifact, cache.path(artifact.want.sha256), "seeded"
                )
        missing = [a for a in missing if a.want.sha256 not in seeded]

    if missing and offline:
        names = [a.want.filename for a in missing]
        raise FetchError(
            f"--offline: {len(missing)} artifact(s) not in the cache "
            f"{cache.root}: {_listing(names)}; supply them with --from DIR"
        )

    if missing:
        total = sum(a.want.size for a in missing)
        errors: list[str] = []
        with (
            ui.transfer(f"fetching {len(missing)} artifacts", total) as advance,
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        ):
            futures = [
                (
                    a,
                    pool.submit(
                        _obtain, a, cache, indexes=indexes, retry=retry, ui=ui, advance=advance
                    ),
                )
                for a in missing
            ]
            for artifact, future in futures:
                try:
                    results[artifact.want.sha256] = future.result()
                except FetchError as err:
                    errors.append(str(err))
        if errors:
            raise FetchError(
                f"{len(errors)} of {len(artifacts)} artifacts failed: "
                + "; ".join(errors[:_MAX_LISTED])
                + (f"; and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else "")
            )
    return [results[a.want.sha256] for a in artifacts]
