"""`layer/lock.json`: every input of a layer pinned by sha256, as frozen dataclasses.

JSON because Nix reads it with `builtins.fromJSON` (`builtins.fromTOML` rejects the datetimes of
uv's pylock.toml). Written byte-stable: sorted keys, 2-space indent, trailing newline. It names no
package-index host: a wheel is its filename and sha256, found through the user's index at fetch
time.
"""

from __future__ import annotations

import hashlib
import json
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

from pybuild.errors import ConfigError, LockError
from pybuild.model.layerfile import Layer, Runtime, parse_layer
from pybuild.model.requirements import Pin
from pybuild.model.target import Target

LOCK_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedWheel:
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
    name: str
    target: Target
    runtime: Runtime
    wheels: tuple[LockedWheel, ...]
    inputs: Inputs

    def to_dict(self) -> dict[str, Any]:
        return {
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
                f"unsupported lock version {version!r} (expected {LOCK_VERSION});"
                " run `pybuild lock`",
            )
        inputs = where.mapping(obj.get("inputs"), "inputs")
        name = where.string(obj.get("name"), "name")
        target_dict = where.mapping(obj.get("target"), "target")
        runtime_dict = where.mapping(obj.get("runtime"), "runtime")
        # The target and runtime follow the same rules as in layer.toml: reuse that validation.
        try:
            layer = parse_layer(
                {"name": name, "requirements": "-", "target": target_dict, "runtime": runtime_dict},
                Path(source),
            )
        except ConfigError as err:
            raise LockError(str(err)) from None
        wheels_raw = obj.get("wheels")
        if not isinstance(wheels_raw, list):
            where.fail("wheels", "expected an array")
        wheels = tuple(
            _wheel_from_dict(where, item, f"wheels[{i}]") for i, item in enumerate(wheels_raw)
        )
        names = [w.name for w in wheels]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            where.fail("wheels", f"{dup} is locked more than once")
        unknown = sorted(set(obj) - {"inputs", "name", "runtime", "target", "version", "wheels"})
        if unknown:
            where.fail(unknown[0], "unknown key")
        return cls(
            name=layer.name,
            target=layer.target,
            runtime=layer.runtime,
            wheels=wheels,
            inputs=Inputs(
                layer=where.sha256(inputs.get("layer"), "inputs.layer"),
                requirements=where.sha256(inputs.get("requirements"), "inputs.requirements"),
            ),
        )


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, text: str) -> NoReturn:
        raise LockError(f"{self.source}: {path or 'top level'}: {text}")

    def mapping(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "expected an object")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, "expected a non-empty string")
        return value

    def sha256(self, value: object, path: str) -> str:
        text = self.string(value, path)
        if not _SHA256.fullmatch(text):
            self.fail(path, f"{text!r} is not 64 lowercase hex digits")
        return text

    def size(self, value: object, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            self.fail(path, f"expected a positive integer, got {value!r}")
        return value


def _wheel_from_dict(where: _Where, item: object, path: str) -> LockedWheel:
    obj = where.mapping(item, path)
    extra = sorted(set(obj) - {"filename", "name", "sha256", "size", "version"})
    if extra:
        where.fail(f"{path}.{extra[0]}", "unknown key")
    wheel = LockedWheel(
        name=canonicalize_name(where.string(obj.get("name"), f"{path}.name")),
        version=where.string(obj.get("version"), f"{path}.version"),
        filename=where.string(obj.get("filename"), f"{path}.filename"),
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
    return {"arch": target.arch.value, "glibc": target.glibc_str, "python": target.python_str}


def _runtime_dict(runtime: Runtime) -> dict[str, Any]:
    return {
        "flavor": runtime.flavor,
        "python_version": runtime.python_version,
        "release": runtime.release,
        "sha256": runtime.sha256,
        "size": runtime.size,
        "triple": runtime.triple,
        "url": runtime.url,
    }


def dumps_stable(data: object) -> str:
    """The one JSON encoding pybuild writes: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def input_digests(layer: Layer, pins: list[Pin]) -> Inputs:
    """Digest what a lock depends on: the pins (not comments or order) and target + runtime."""
    layer_part = {
        "name": layer.name,
        "runtime": _runtime_dict(layer.runtime),
        "target": _target_dict(layer.target),
        "version": LOCK_VERSION,
    }
    pins_part = sorted(str(p) for p in pins)
    return Inputs(
        layer=hashlib.sha256(dumps_stable(layer_part).encode()).hexdigest(),
        requirements=hashlib.sha256(dumps_stable(pins_part).encode()).hexdigest(),
    )


def read_lock(path: Path) -> Lock:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: no such file; run `pybuild lock` first") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LockError(f"{path}: cannot read: {err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LockError(f"{path}: invalid JSON: {err}") from None
    return Lock.from_dict(data, str(path))
