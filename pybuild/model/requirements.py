"""`requirements.txt`: the layer's direct and transitive requirements, each pinned with ``==``.

Only what a lock can be built from reproducibly is accepted: one exact version per distribution.
Ranges, wildcards, URLs, editables and pip options are rejected with the line they are on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from pybuild.errors import ConfigError
from pybuild.support.inputs import read_failure, read_input


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One ``name==version`` line (extras and an environment marker allowed)."""

    name: NormalizedName
    version: str
    extras: tuple[str, ...]
    marker: str | None
    line: int

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        marker = f" ; {self.marker}" if self.marker else ""
        return f"{self.name}{extras}=={self.version}{marker}"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments, keeping the first physical line number."""
    lines: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw
        # pip's rule: a comment starts at '#' at the beginning or after whitespace.
        for i, char in enumerate(line):
            if char == "#" and (i == 0 or line[i - 1].isspace()):
                line = line[:i]
                break
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        pending += line
        if pending.strip():
            lines.append((start, pending.strip()))
        pending = ""
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _requirement(line: str, where: str) -> Requirement | str:
    """The requirement of `line`, or the problem with it (starting with `where`)."""
    try:
        return Requirement(line)
    except InvalidRequirement as err:
        reason = str(err).splitlines()[0]
        return f"{where}: invalid requirement {line!r}: {reason}"
    except RecursionError:  # packaging parses a marker's parentheses recursively
        return f"{where}: invalid requirement: parentheses nested too deeply"


def parse_requirements(text: str, source: str) -> list[Pin]:
    """Parse pinned requirements; raise `ConfigError` listing every offending line."""
    problems: list[str] = []
    pins: dict[tuple[NormalizedName, str | None], Pin] = {}
    for number, line in _logical_lines(text):
        where = f"{source}:{number}"
        if line.startswith("-"):
            problems.append(
                f"{where}: pip options are not supported here ({line.split()[0]}); "
                "the lock pins hashes and the index comes from pip/uv configuration"
            )
            continue
        if " -" in line:
            option = line[line.index(" -") + 1 :].split()[0].split("=")[0]
            problems.append(
                f"{where}: per-requirement options are not supported ({option}); "
                "hashes are pinned in lock.json by `pybuild lock`"
            )
            continue
        req = _requirement(line, where)
        if isinstance(req, str):
            problems.append(req)
            continue
        if req.url:
            problems.append(f"{where}: {req.name}: direct URL references are not supported")
            continue
        specs = list(req.specifier)
        if (
            len(specs) != 1
            or specs[0].operator not in ("==", "===")
            or "*" in specs[0].version
            or not specs[0].version
        ):
            problems.append(
                f"{where}: {req.name}{req.specifier} is not pinned: use {req.name}==VERSION"
            )
            continue
        pin = Pin(
            name=canonicalize_name(req.name),
            version=specs[0].version,
            extras=tuple(sorted(canonicalize_name(e) for e in req.extras)),
            marker=str(req.marker) if req.marker else None,
            line=number,
        )
        other = pins.get((pin.name, pin.marker))
        if other is not None:
            if other.version != pin.version:
                problems.append(
                    f"{where}: {pin.name}=={pin.version} conflicts with "
                    f"{pin.name}=={other.version} on line {other.line}"
                )
            else:
                problems.append(f"{where}: {pin.name} is pinned twice (also line {other.line})")
            continue
        pins[(pin.name, pin.marker)] = pin
    if problems:
        if len(problems) == 1:
            raise ConfigError(problems[0])
        raise ConfigError(f"{source}: {len(problems)} problems", problems)
    if not pins:
        raise ConfigError(f"{source}: no requirements")
    return sorted(pins.values(), key=lambda p: (p.name, p.marker or ""))


def load_requirements(path: Path) -> list[Pin]:
    """Read and parse a requirements.txt; ConfigError if it cannot be read or is not valid."""
    try:
        text = read_input(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (the layer's `requirements` key)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {read_failure(err)}") from None
    return parse_requirements(text, str(path))
