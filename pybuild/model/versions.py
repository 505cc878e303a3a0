"""Ordered version values: the glibc ceiling of a target and the Python minor version of a runtime.

Comparisons are comparisons (``glibc <= GlibcVersion(2, 34)``), never string parsing scattered
around, as auditwheel's `LibcVersion` does it. Both parse ``"MAJOR.MINOR"`` and print back the
same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


def _parse_pair(text: str, major: int) -> tuple[int, int]:
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not of the form '{major}.N'")
    value = (int(parts[0]), int(parts[1]))
    if value[0] != major:
        raise ValueError(f"{text!r} has major version {value[0]}, expected {major}")
    return value


@dataclass(frozen=True, slots=True, order=True)
class GlibcVersion:
    """A glibc version such as 2.34: the newest glibc a target's system provides."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """``"2.34"`` -> GlibcVersion(2, 34); ValueError with a readable reason otherwise."""
        return cls(*_parse_pair(text, 2))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True, slots=True, order=True)
class PythonVersion:
    """A CPython minor version such as 3.11 (a runtime's ABI: magic number, cache tag, tags)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """``"3.11"`` -> PythonVersion(3, 11); ValueError with a readable reason otherwise."""
        return cls(*_parse_pair(text, 3))

    @classmethod
    def of(cls, full_version: str) -> Self:
        """The minor version of a full one: ``"3.11.15"`` -> 3.11."""
        major, _, rest = full_version.partition(".")
        return cls.parse(f"{major}.{rest.partition('.')[0]}")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tag(self) -> str:
        """The wheel tag of this CPython: ``cp311``."""
        return f"cp{self.major}{self.minor}"

    @property
    def executable(self) -> str:
        """The interpreter's name, also its library directory's: ``python3.11``."""
        return f"python{self}"

    def matches(self, full_version: str) -> bool:
        """Whether ``"3.11.2"`` is a release of this minor version."""
        return full_version.startswith(f"{self}.")
