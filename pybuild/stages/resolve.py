"""Resolution for the target with uv: which distributions, which versions, which wheel files.

uv's ``--python-platform`` evaluates environment markers for the target (pip's ``--platform``
evaluates them for the host). uv writes a PEP 751 ``pylock.toml``, read here with packaging's
validating `Pylock`. Builds are disabled: locking never runs a package's build backend.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import NormalizedName, canonicalize_name

from pybuild.errors import LockError
from pybuild.model.requirements import Pin
from pybuild.model.target import Target
from pybuild.support import proc
from pybuild.support.index import Indexes


@dataclass(frozen=True, slots=True)
class Candidate:
    """One file uv found for a resolved distribution."""

    filename: str
    url: str
    sha256: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class Resolved:
    """One distribution of uv's resolution: its normalized name, version, and the files uv found for
    it (the wheels, and the sdist if any)."""

    name: NormalizedName
    version: str
    wheels: tuple[Candidate, ...]
    sdist: Candidate | None


def uv_binary() -> str:
    """The pinned uv that came with pybuild (``PYBUILD_UV`` overrides it)."""
    override = os.environ.get("PYBUILD_UV")
    if override:
        return override
    from uv import find_uv_bin

    return find_uv_bin()


def _filename(url: str | None, path: str | None) -> str:
    location = url or path or ""
    return urllib.parse.unquote(urllib.parse.urlsplit(location).path.rsplit("/", 1)[-1])


# ANSI colours and the box-drawing marks uv decorates its reports with (x, corners, arrows).
_DECORATION = re.compile("\x1b\\[[0-9;]*m|[\u00d7\u2570\u2500\u25b6\u2502\u251c]")


def condense(text: str) -> str:
    """uv's multi-line, decorated report as one plain line."""
    line = " ".join(_DECORATION.sub(" ", text).split())
    return line.removeprefix("error: ")


def resolve(
    pins: list[Pin], target: Target, python_version: str, indexes: Indexes
) -> list[Resolved]:
    """Resolve `pins` for `target` with uv; raise `LockError` with uv's reason on failure."""
    with tempfile.TemporaryDirectory(prefix="pybuild-lock-") as tmp:
        requirements = Path(tmp) / "requirements.in"
        requirements.write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
        output = Path(tmp) / "pylock.toml"
        command = [
            uv_binary(),
            "pip",
            "compile",
            str(requirements),
            "--format",
            "pylock.toml",
            "--output-file",
            str(output),
            "--python-version",
            python_version,
            "--python-platform",
            target.uv_python_platform(),
            "--no-build",
            "--no-header",
            "--quiet",
            "--no-python-downloads",
            # pip's semantics across several indexes: the hash pin, not the index order,
            # decides which bytes are used.
            "--index-strategy",
            "unsafe-best-match",
            "--index-url",
            indexes.primary,
        ]
        for extra in indexes.extra:
            command += ["--extra-index-url", extra]
        env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
        try:
            completed = proc.run(command, env=env)
        except OSError as err:
            raise LockError(f"cannot run uv ({command[0]}): {err}") from None
        if completed.returncode != 0:
            raise LockError(
                f"resolution failed for {target.arch.value} glibc {target.glibc} Python "
                f"{python_version}: {condense(completed.stderr) or 'uv exited with no message'}"
            )
        try:
            lock = Pylock.from_dict(tomllib.loads(output.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, PylockValidationError) as err:
            raise LockError(f"uv wrote an unreadable pylock.toml: {err}") from None

    resolved = []
    for package in lock.packages:
        if package.version is None:
            raise LockError(f"uv resolved {package.name} without a version")
        wheels = tuple(
            Candidate(
                _filename(w.url, w.path), w.url or w.path or "", w.hashes.get("sha256"), w.size
            )
            for w in package.wheels or ()
        )
        sdist = None
        if package.sdist is not None:
            s = package.sdist
            sdist = Candidate(
                _filename(s.url, s.path), s.url or s.path or "", s.hashes.get("sha256"), s.size
            )
        resolved.append(
            Resolved(canonicalize_name(package.name), str(package.version), wheels, sdist)
        )
    return resolved
