"""The lock stage: from pinned requirements and a target to `layer/lock.json`.

The runtime's provider pins the runtime and a bytecode compiler for each build host. uv resolves
the requirements for the target; pybuild then picks exactly one wheel per distribution, the best
one for the target by packaging's tag order, and refuses anything it cannot pin: a distribution
with no wheel for the target, or one the resolution needs that `requirements.txt` does not pin.
When uv fails, its own reason is kept, made precise only where the index shows that a pinned
release exists but has no wheel for the target.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pybuild.errors import LockError
from pybuild.model.layerfile import Layer
from pybuild.model.lockfile import Lock, LockedWheel, input_digests
from pybuild.model.requirements import Pin
from pybuild.model.target import Target
from pybuild.runtimes import provider
from pybuild.stages.fetch import download
from pybuild.stages.resolve import Candidate, Resolved, resolve
from pybuild.support.cache import Cache, Unknown
from pybuild.support.index import Indexes, project_files
from pybuild.support.net import RetryPolicy, TransientError
from pybuild.ui import Ui


def _rank(filename: str, priority: dict[Tag, int]) -> tuple[int, tuple[int, str]] | None:
    try:
        _, _, build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    ranks = [priority[tag] for tag in tags if tag in priority]
    if not ranks:
        return None
    # Best tag first; among equal tags the highest build number wins.
    return min(ranks), ((-build[0], build[1]) if build else (0, ""))


def select_wheel(candidates: Iterable[Candidate], target: Target) -> Candidate | None:
    """The one wheel to install on `target`, or None when no candidate fits it."""
    priority = {tag: i for i, tag in enumerate(target.wheel_tags())}
    ranked = []
    for candidate in candidates:
        rank = _rank(candidate.filename, priority)
        if rank is not None:
            ranked.append((rank, candidate.filename, candidate))
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def describe_tags(target: Target) -> str:
    """A readable summary of `Target.wheel_tags()` for error messages."""
    platforms = target.platform_tags()
    py = target.python.tag
    return (
        f"{py}-{py}, {py}-abi3 (and older abi3), py3-none on {platforms[0]} down to "
        f"{platforms[-1]}, then py3-none-any"
    )


def _no_wheel(name: str, version: str, target: Target, available: list[str]) -> LockError:
    have = ", ".join(sorted(available)) if available else "no files at all"
    return LockError(
        f"{name}=={version} has no wheel for {target.describe()} (tags searched: "
        f"{describe_tags(target)}); the index has: "
        f"{have}"
    )


def _diagnose(
    error: LockError, pins: list[Pin], target: Target, indexes: Indexes, retry: RetryPolicy
) -> LockError:
    """Turn uv's failure into a precise one where a pinned distribution lacks a target wheel."""
    message = str(error).lower()
    for pin in pins:
        if pin.name not in message and pin.name.replace("-", "_") not in message:
            continue
        files: list[str] = []
        for index_url in indexes.urls:
            try:
                listed = project_files(index_url, pin.name, retry)
            except (OSError, TransientError, ValueError):
                continue
            files += [f.filename for f in listed if _is_version(f.filename, pin)]
        if not files:
            continue  # unreachable, or no such release: uv's reason says it best
        wheels = [Candidate(f, "", None, None) for f in files if f.endswith(".whl")]
        if select_wheel(wheels, target) is None:
            return _no_wheel(pin.name, pin.version, target, files)
    return error


def _is_version(filename: str, pin: Pin) -> bool:
    """Whether an index file (wheel or sdist) is a release of exactly `pin`."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
        return name == pin.name and version == Version(pin.version)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return False


def create_lock(
    layer: Layer,
    pins: list[Pin],
    *,
    indexes: Indexes,
    cache: Cache,
    ui: Ui,
    retry: RetryPolicy | None = None,
) -> Lock:
    """Make the lock of `layer`: the runtime and compilers from its provider, the resolution of
    `pins` for the target with uv, and the best wheel of each distribution for the target.

    Raises LockError when uv fails (saying so precisely where a pinned release has no wheel for
    the target), when the resolution needs a distribution `pins` leave out, or when a
    distribution has no wheel for the target. A wheel the index lists without size or sha256 is
    downloaded into `cache` to measure it.
    """
    retry = retry or RetryPolicy()
    target = layer.target
    runtime, compilers = provider(layer.runtime.provider).lock(layer, cache, ui)
    ui.info(f"runtime: {runtime.description}")
    ui.info(
        f"resolving {len(pins)} pins for {target.describe()} (CPython "
        f"{runtime.python_version}) with uv ({indexes.primary})"
    )
    try:
        resolved = resolve(pins, target, runtime.python_version, indexes)
    except LockError as err:
        raise _diagnose(err, pins, target, indexes, retry) from None

    pinned = {pin.name for pin in pins}
    unpinned = [f"{r.name}=={r.version}" for r in resolved if r.name not in pinned]
    if unpinned:
        raise LockError(
            f"{layer.requirements}: the resolution needs {', '.join(unpinned)}, "
            "which are not pinned; add them (every package of the closure is "
            "pinned with ==)"
        )

    chosen = [(package, _choose(package, target)) for package in resolved]
    unmeasured = [best for _, best in chosen if best.sha256 is None or best.size is None]
    if unmeasured:
        # Plain PEP 503 pages carry no size (and some no hash): measure the real files.
        ui.info(f"{len(unmeasured)} wheels are listed without size or sha256; measuring them")
    wheels = [
        _measure(package, best, cache, ui, retry)
        for package, best in sorted(chosen, key=lambda item: item[0].name)
    ]
    return Lock(
        name=layer.name,
        target=target,
        runtime=runtime,
        compilers=compilers,
        wheels=tuple(wheels),
        inputs=input_digests(layer, pins),
    )


def _choose(package: Resolved, target: Target) -> Candidate:
    best = select_wheel(package.wheels, target)
    if best is None:
        available = [w.filename for w in package.wheels]
        if package.sdist is not None:
            available.append(package.sdist.filename)
        raise _no_wheel(package.name, package.version, target, available)
    return best


def _measure(
    package: Resolved, best: Candidate, cache: Cache, ui: Ui, retry: RetryPolicy
) -> LockedWheel:
    """The locked wheel; its size (and sha256) measured on the real file where not listed."""
    sha256, size = best.sha256, best.size
    if size is None and sha256 is not None:
        size = cache.size_if_holds(sha256)
    if sha256 is None or size is None:
        try:
            _, measured_sha256, size = download(
                Unknown(best.filename), best.url, cache, retry=retry, ui=ui
            )
        except (OSError, TransientError) as err:
            raise LockError(f"{best.filename}: cannot download from {best.url} ({err})") from None
        if sha256 is not None and measured_sha256 != sha256:
            raise LockError(
                f"{best.filename}: the index lists sha256 {sha256}, the file has {measured_sha256}"
            )
        sha256 = measured_sha256
    return LockedWheel(
        name=package.name, version=package.version, filename=best.filename, sha256=sha256, size=size
    )
