"""The machine a layer runs on: CPU architecture, glibc ceiling, Python minor version.

Everything that depends on the target (which wheel tags are acceptable, how uv is asked to resolve)
is derived here, from the target alone, never from the host running pybuild.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags

from pybuild.model.versions import GlibcVersion, PythonVersion


class Arch(enum.Enum):
    """CPU architectures AWS Lambda offers."""

    AARCH64 = "aarch64"
    X86_64 = "x86_64"

    @property
    def oldest_manylinux(self) -> int:
        """The glibc minor version of the oldest manylinux policy defined for this arch."""
        return 17 if self is Arch.AARCH64 else 5


# PEP 600 aliases of the legacy manylinux policy names, keyed by glibc minor version.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_LEGACY_ARCHES = {
    "manylinux2014": {"x86_64", "aarch64"},
    "manylinux2010": {"x86_64"},
    "manylinux1": {"x86_64"},
}

# The manylinux levels uv's `--python-platform` accepts (uv 0.13.9, measured):
# 2_17, 2_28, 2_31 .. 2_40.
_UV_MANYLINUX_MINORS = (17, 28, *range(31, 41))


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What the layer must run on."""

    arch: Arch
    glibc: GlibcVersion
    python: PythonVersion

    def describe(self) -> str:
        """e.g. ``aarch64 glibc 2.34 Python 3.11``."""
        return f"{self.arch.value} glibc {self.glibc} Python {self.python}"

    def platform_tags(self) -> list[str]:
        """Manylinux platform tags the target accepts, most specific (newest glibc) first."""
        arch = self.arch.value
        tags: list[str] = []
        for minor in range(self.glibc.minor, self.arch.oldest_manylinux - 1, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            legacy = _LEGACY_MANYLINUX.get(minor)
            if legacy is not None and arch in _LEGACY_ARCHES[legacy]:
                tags.append(f"{legacy}_{arch}")
        return tags

    def wheel_tags(self) -> list[Tag]:
        """Every wheel tag the target accepts, in order of preference (best first).

        The same order pip and packaging use for an installed interpreter: the exact CPython ABI,
        then abi3 down to cp32, then pure-Python tags; within each, the newest manylinux first.
        """
        platforms = self.platform_tags()
        version = (self.python.major, self.python.minor)
        tags = list(cpython_tags(version, abis=[self.python.tag], platforms=platforms))
        tags += compatible_tags(version, interpreter=self.python.tag, platforms=platforms)
        return tags

    def uv_python_platform(self) -> str:
        """The value for uv's ``--python-platform``: the newest level uv knows within the ceiling.

        uv has no level between 2_17 and 2_28, so an Amazon Linux 2 target (glibc 2.26) resolves
        at 2_17 and the wheel choice is then made by `wheel_tags`.
        """
        if self.glibc.minor < self.arch.oldest_manylinux:
            raise ValueError(f"glibc {self.glibc} is older than any manylinux policy")
        usable = [m for m in _UV_MANYLINUX_MINORS if m <= self.glibc.minor]
        if not usable:
            raise ValueError(f"uv cannot resolve for glibc {self.glibc} (oldest level: 2.17)")
        return f"{self.arch.value}-manylinux_2_{max(usable)}"
