"""`lock.json`: every input of a layer pinned by sha256, as frozen dataclasses.

JSON because Nix reads it with `builtins.fromJSON` (`builtins.fromTOML` rejects the datetimes of
uv's pylock.toml). Written byte-stable: sorted keys, 2-space indent, trailing newline. An object
of these classes exists only if the file was valid; every error names the path of the bad field
(``wheels[3].sha256``).

What it pins: the runtime (the files its provider lays out: a python-build-standalone archive,
or Debian packages), the bytecode compiler for each build-host architecture (the same release of
the same CPython: the bytes of the layer never depend on the machine that builds it), and one
wheel per distribution. It names no package-index host: a wheel is its filename and sha256,
found through the user's index at fetch time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pybuild.errors import CheckError, LockError
from pybuild.model.layerfile import DebianRuntime, Layer, PbsRuntime, Provider
from pybuild.model.requirements import Pin
from pybuild.model.target import Arch, Target
from pybuild.model.versions import GlibcVersion, PythonVersion
from pybuild.support.inputs import parse_json, read_failure, read_input
from pybuild.support.jsonout import dumps_stable

LOCK_VERSION = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DEBIAN_ARCHIVES = ("debian", "debian-security")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebianOrigin:
    """Where a Debian package lives in the archive (any mirror serves the same path)."""

    package: str
    version: str
    architecture: str  # Debian's name: arm64, amd64
    archive: str  # "debian" or "debian-security"
    path: str  # "pool/main/p/python3.11/python3.11-minimal_3.11.2-6+deb12u9_arm64.deb"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedFile:
    """One input file, pinned by content, with where to find it."""

    filename: str
    sha256: str
    size: int
    url: str | None = None  # python-build-standalone archives (a mirror may stand in)
    debian: DebianOrigin | None = None  # Debian packages


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedRuntime:
    """A CPython as its provider delivers it: the runtime of the layer, or a compiler."""

    provider: Provider
    python_version: str  # "3.11.15"
    description: str  # human: "python-build-standalone 20260414 aarch64 install_only_stripped"
    files: tuple[LockedFile, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedWheel:
    """One pinned wheel: its distribution's normalized name and version, and the file by name,
    sha256 and size in bytes (checked on reading to be a wheel of that name and version)."""

    name: NormalizedName
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """Digests of what the lock was made from; `pybuild lock --check` compares them."""

    layer: str
    requirements: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A whole lock.json: target, runtime, the compilers pinned per build-host architecture and one
    wheel per distribution, with the `inputs` it was made from."""

    name: str
    target: Target
    runtime: LockedRuntime
    compilers: tuple[tuple[Arch, LockedRuntime], ...]  # bytecode compiler per build-host arch
    wheels: tuple[LockedWheel, ...]
    inputs: Inputs

    def compiler(self, arch: Arch) -> LockedRuntime | None:
        """The pinned bytecode compiler that runs natively on an `arch` build host."""
        return dict(self.compilers).get(arch)

    def to_dict(self) -> dict[str, Any]:
        """The lock as lock.json's object, of version `LOCK_VERSION`, its wheels sorted by name."""
        return {
            "compilers": {arch.value: _runtime_dict(c) for arch, c in self.compilers},
            "inputs": {"layer": self.inputs.layer, "requirements": self.inputs.requirements},
            "name": self.name,
            "runtime": _runtime_dict(self.runtime),
            "target": _target_dict(self.target),
            "version": LOCK_VERSION,
            "wheels": [
                {
                    "filename": w.filename,
                    "name": w.name,
                    "sha256": w.sha256,
                    "size": w.size,
                    "version": w.version,
                }
                for w in sorted(self.wheels, key=lambda w: (w.name, w.filename))
            ],
        }

    def to_json(self) -> str:
        """The text of lock.json: sorted keys, 2-space indent, trailing newline."""
        return dumps_stable(self.to_dict())

    @classmethod
    def from_dict(cls, data: object, source: str) -> Lock:
        """Validate a parsed lock.json; every error names the path of the bad field."""
        where = _Where(source)
        obj = where.mapping(data, "")
        version = obj.get("version")
        if version != LOCK_VERSION:
            where.fail(
                "version",
                f"unsupported lock version {version!r} (expected {LOCK_VERSION}); "
                "run `pybuild lock`",
            )
        where.only(
            obj, "", {"compilers", "inputs", "name", "runtime", "target", "version", "wheels"}
        )
        inputs = where.mapping(obj.get("inputs"), "inputs")
        where.only(inputs, "inputs", {"layer", "requirements"})
        compilers = where.mapping(obj.get("compilers"), "compilers")
        locked_compilers = []
        for key in sorted(compilers):
            try:
                arch = Arch(key)
            except ValueError:
                where.fail(f"compilers.{key}", "not an architecture")
            locked_compilers.append((arch, _runtime(where, compilers[key], f"compilers.{key}")))
        wheels_raw = obj.get("wheels")
        if not isinstance(wheels_raw, list):
            where.fail("wheels", "expected an array")
        wheels = tuple(_wheel(where, item, f"wheels[{i}]") for i, item in enumerate(wheels_raw))
        names = [w.name for w in wheels]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            where.fail("wheels", f"{dup} is locked more than once")
        return cls(
            name=where.string(obj.get("name"), "name"),
            target=_target(where, obj.get("target")),
            runtime=_runtime(where, obj.get("runtime"), "runtime"),
            compilers=tuple(locked_compilers),
            wheels=wheels,
            inputs=Inputs(
                layer=where.sha256(inputs.get("layer"), "inputs.layer"),
                requirements=where.sha256(inputs.get("requirements"), "inputs.requirements"),
            ),
        )


class _Where:
    """Validation helpers that fail with the path of the field in the file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, text: str) -> NoReturn:
        raise LockError(f"{self.source}: {path or 'top level'}: {text}")

    def mapping(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "expected an object")
        return value

    def only(self, obj: dict[str, Any], path: str, keys: set[str]) -> None:
        unknown = sorted(set(obj) - keys)
        if unknown:
            self.fail(f"{path}.{unknown[0]}" if path else unknown[0], "unknown key")

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, "expected a non-empty string")
        return value

    def sha256(self, value: object, path: str) -> str:
        text = self.string(value, path)
        if not _SHA256.fullmatch(text):
            self.fail(path, f"{text!r} is not 64 lowercase hex digits")
        return text

    def file_name(self, value: object, path: str) -> str:
        """A name the file is stored under in the cache and a work directory: one path segment."""
        text = self.string(value, path)
        if "/" in text or "\0" in text or text in (".", ".."):
            self.fail(path, f"{text!r} is not a file name")
        return text

    def size(self, value: object, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            self.fail(path, f"expected a positive integer, got {value!r}")
        return value


def _target(where: _Where, value: object) -> Target:
    obj = where.mapping(value, "target")
    where.only(obj, "target", {"arch", "glibc", "python"})
    try:
        arch = Arch(where.string(obj.get("arch"), "target.arch"))
    except ValueError:
        where.fail("target.arch", f"{obj.get('arch')!r} is not one of aarch64, x86_64")
    try:
        glibc = GlibcVersion.parse(where.string(obj.get("glibc"), "target.glibc"))
    except ValueError as err:
        where.fail("target.glibc", str(err))
    try:
        python = PythonVersion.parse(where.string(obj.get("python"), "target.python"))
    except ValueError as err:
        where.fail("target.python", str(err))
    return Target(arch=arch, glibc=glibc, python=python)


def _file(where: _Where, value: object, path: str) -> LockedFile:
    obj = where.mapping(value, path)
    where.only(obj, path, {"debian", "filename", "sha256", "size", "url"})
    debian = None
    if "debian" in obj:
        raw = where.mapping(obj["debian"], f"{path}.debian")
        keys = {"archive", "architecture", "package", "path", "version"}
        where.only(raw, f"{path}.debian", keys)
        fields = {k: where.string(raw.get(k), f"{path}.debian.{k}") for k in sorted(keys)}
        if fields["archive"] not in _DEBIAN_ARCHIVES:
            where.fail(f"{path}.debian.archive", f"not one of {', '.join(_DEBIAN_ARCHIVES)}")
        if fields["path"].startswith("/") or ".." in fields["path"].split("/"):
            where.fail(f"{path}.debian.path", "must be a path inside the archive")
        debian = DebianOrigin(**fields)
    url = where.string(obj["url"], f"{path}.url") if "url" in obj else None
    if (url is None) == (debian is None):
        where.fail(path, "needs exactly one of url and debian")
    return LockedFile(
        filename=where.file_name(obj.get("filename"), f"{path}.filename"),
        sha256=where.sha256(obj.get("sha256"), f"{path}.sha256"),
        size=where.size(obj.get("size"), f"{path}.size"),
        url=url,
        debian=debian,
    )


def _runtime(where: _Where, value: object, path: str) -> LockedRuntime:
    obj = where.mapping(value, path)
    where.only(obj, path, {"description", "files", "provider", "python_version"})
    try:
        provider = Provider(where.string(obj.get("provider"), f"{path}.provider"))
    except ValueError:
        where.fail(f"{path}.provider", f"{obj.get('provider')!r} is not a runtime provider")
    python_version = where.string(obj.get("python_version"), f"{path}.python_version")
    if not re.fullmatch(r"3\.\d+\.\d+", python_version):
        where.fail(f"{path}.python_version", f"{python_version!r} is not of the form '3.N.M'")
    files = obj.get("files")
    if not isinstance(files, list) or not files:
        where.fail(f"{path}.files", "expected a non-empty array")
    return LockedRuntime(
        provider=provider,
        python_version=python_version,
        description=where.string(obj.get("description"), f"{path}.description"),
        files=tuple(_file(where, f, f"{path}.files[{i}]") for i, f in enumerate(files)),
    )


def _wheel(where: _Where, item: object, path: str) -> LockedWheel:
    obj = where.mapping(item, path)
    where.only(obj, path, {"filename", "name", "sha256", "size", "version"})
    wheel = LockedWheel(
        name=canonicalize_name(where.string(obj.get("name"), f"{path}.name")),
        version=where.string(obj.get("version"), f"{path}.version"),
        filename=where.file_name(obj.get("filename"), f"{path}.filename"),
        sha256=where.sha256(obj.get("sha256"), f"{path}.sha256"),
        size=where.size(obj.get("size"), f"{path}.size"),
    )
    try:
        file_name, file_version, _, _ = parse_wheel_filename(wheel.filename)
        matches = file_name == wheel.name and file_version == Version(wheel.version)
    except (InvalidWheelFilename, InvalidVersion) as err:
        where.fail(f"{path}.filename", str(err))
    if not matches:
        where.fail(
            f"{path}.filename", f"{wheel.filename!r} is not a wheel of {wheel.name} {wheel.version}"
        )
    return wheel


def _target_dict(target: Target) -> dict[str, str]:
    return {"arch": target.arch.value, "glibc": str(target.glibc), "python": str(target.python)}


def _file_dict(file: LockedFile) -> dict[str, Any]:
    out: dict[str, Any] = {"filename": file.filename, "sha256": file.sha256, "size": file.size}
    if file.url is not None:
        out["url"] = file.url
    if file.debian is not None:
        d = file.debian
        out["debian"] = {
            "archive": d.archive,
            "architecture": d.architecture,
            "package": d.package,
            "path": d.path,
            "version": d.version,
        }
    return out


def _runtime_dict(runtime: LockedRuntime) -> dict[str, Any]:
    return {
        "description": runtime.description,
        "files": [_file_dict(f) for f in runtime.files],
        "provider": runtime.provider.value,
        "python_version": runtime.python_version,
    }


def runtime_spec_dict(layer: Layer) -> dict[str, Any]:
    """What of `[runtime]` a lock depends on (a Debian mirror is only where files come from)."""
    spec = layer.runtime
    if isinstance(spec, DebianRuntime):
        return {"provider": spec.provider.value, "suite": spec.suite}
    assert isinstance(spec, PbsRuntime)  # noqa: S101 - the two providers
    pinned = {
        arch.value: {"sha256": p.sha256, "size": p.size, "url": p.url} for arch, p in spec.compilers
    }
    archive = spec.archive
    return {
        "archive": None
        if archive is None
        else {"sha256": archive.sha256, "size": archive.size, "url": archive.url},
        "compilers": pinned,
        "flavor": spec.flavor,
        "provider": spec.provider.value,
        "python_version": spec.python_version,
        "release": spec.release,
    }


def input_digests(layer: Layer, pins: list[Pin]) -> Inputs:
    """Digest what a lock depends on: the pins (not comments or order), target and runtime."""
    layer_part = {
        "name": layer.name,
        "profile": layer.profile.name,
        "runtime": runtime_spec_dict(layer),
        "target": _target_dict(layer.target),
        "version": LOCK_VERSION,
    }
    pins_part = sorted(str(p) for p in pins)
    return Inputs(
        layer=hashlib.sha256(dumps_stable(layer_part).encode()).hexdigest(),
        requirements=hashlib.sha256(dumps_stable(pins_part).encode()).hexdigest(),
    )


def stale_reasons(layer: Layer, pins: list[Pin], lock: Lock) -> list[str]:
    """Why `lock` no longer matches the layer's inputs (empty when it is current)."""
    current = input_digests(layer, pins)
    reasons = []
    if lock.inputs.layer != current.layer:
        reasons.append(f"{layer.path} changed (name, target, profile or runtime)")
    if lock.inputs.requirements != current.requirements:
        locked: dict[str, str] = {w.name: w.version for w in lock.wheels}
        pinned: dict[str, set[str]] = {}
        for pin in pins:  # one name may be pinned under several markers
            pinned.setdefault(pin.name, set()).add(pin.version)
        changed = [
            f"{name} {locked[name]} -> {' or '.join(sorted(versions))}"
            if name in locked
            else f"{name} added"
            for name, versions in sorted(pinned.items())
            if locked.get(name) not in versions
        ]
        changed += [f"{name} removed" for name in sorted(locked.keys() - pinned.keys())]
        detail = f" ({', '.join(changed[:5])})" if changed else ""
        reasons.append(f"{layer.requirements} changed{detail}")
    return reasons


def read_lock(path: Path) -> Lock:
    """Read and validate a lock.json; LockError if it is missing, unreadable or not valid."""
    try:
        text = read_input(path)
    except FileNotFoundError:
        raise LockError(f"{path}: no such file; run `pybuild lock` first") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LockError(f"{path}: cannot read: {read_failure(err)}") from None
    try:
        data = parse_json(text)
    except ValueError as err:
        raise LockError(f"{path}: invalid JSON: {err}") from None
    return Lock.from_dict(data, str(path))


def current_lock(layer: Layer, pins: list[Pin]) -> Lock:
    """The layer's lock, refused (exit 1) when it does not match the layer's inputs."""
    lock = read_lock(layer.lock_path)
    reasons = stale_reasons(layer, pins, lock)
    if reasons:
        raise CheckError(f"{layer.lock_path} is stale: {'; '.join(reasons)}; run `pybuild lock`")
    return lock
