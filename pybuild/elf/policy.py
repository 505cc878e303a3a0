"""What a target allows its binaries: system libraries (ours) and symbol versions (auditwheel's).

`Profile`s come from `pybuild/data/profiles.toml`. Symbol-version ceilings come from auditwheel's
`manylinux-policy.json` (read as data from the installed, pinned auditwheel; none of its code
runs): for glibc 2.34 that is manylinux_2_34's sets, for 2.26 manylinux_2_26's.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pybuild.elf.types import SymbolVersion
from pybuild.errors import ConfigError
from pybuild.model.target import Arch
from pybuild.model.versions import GlibcVersion


@dataclass(frozen=True, slots=True)
class Profile:
    """A system profile from `data/profiles.toml`: an execution environment's glibc and the
    libraries it provides, which a layer's binaries may need without carrying them.

    `lambda_runtimes` are the Lambda runtime identifiers `build` writes, most preferred first;
    empty for an environment that is not a Lambda image.
    """

    name: str
    description: str
    glibc: GlibcVersion
    system_libraries: frozenset[str]
    lambda_runtimes: tuple[str, ...]  # empty: not a Lambda image


@dataclass(frozen=True, slots=True)
class Policy:
    """A manylinux policy's symbol versions for one architecture."""

    name: str
    arch: Arch
    allowed: dict[str, frozenset[str]]  # prefix ("GLIBC") -> version strings ("2.17", ...)

    def ceiling(self, prefix: str) -> str:
        """The highest numbered version allowed for `prefix`, e.g. ``GLIBC_2.34``."""
        numbered = [SymbolVersion.parse(f"{prefix}_{v}") for v in self.allowed[prefix]]
        return max(v for v in numbered if v.prefix == prefix).name

    def violation(self, name: str) -> str | None:
        """None if `name` (e.g. ``GLIBCXX_3.4.30``) is allowed or not governed by the policy;
        otherwise what is allowed instead."""
        if name == "GLIBC_PRIVATE":
            return "no GLIBC_PRIVATE (glibc's internal ABI, different in every release)"
        prefixes = [p for p in self.allowed if name.startswith(f"{p}_")]
        if not prefixes:
            return None  # a version of a library the policy does not govern
        prefix = max(prefixes, key=len)
        if name[len(prefix) + 1 :] in self.allowed[prefix]:
            return None
        return f"at most {self.ceiling(prefix)} ({self.name})"


@cache
def load_profiles() -> dict[str, Profile]:
    """Every profile in `data/profiles.toml`, by name; read once, the same dict every call."""
    text = importlib.resources.files("pybuild").joinpath("data/profiles.toml").read_text("utf-8")
    profiles = {}
    for name, raw in tomllib.loads(text).items():
        profiles[name] = Profile(
            name=name,
            description=raw["description"],
            glibc=GlibcVersion.parse(raw["glibc"]),
            system_libraries=frozenset(raw["system_libraries"]),
            lambda_runtimes=tuple(raw["lambda_runtimes"]),
        )
    return profiles


def profile_for(glibc: GlibcVersion, name: str | None = None) -> Profile:
    """The named profile, or the one whose glibc is `glibc`."""
    profiles = load_profiles()
    known = ", ".join(f"{p.name} (glibc {p.glibc})" for p in profiles.values())
    if name is not None:
        if name not in profiles:
            raise ConfigError(f"unknown system profile {name!r}; known: {known}")
        profile = profiles[name]
        if profile.glibc != glibc:
            raise ConfigError(f"profile {name} has glibc {profile.glibc}, not {glibc}")
        return profile
    for profile in profiles.values():
        if profile.glibc == glibc:
            return profile
    raise ConfigError(
        f"no system profile for glibc {glibc} (set target.profile, or use a glibc of: {known})"
    )


@cache
def _manylinux_policies() -> list[dict[str, object]]:
    located = importlib.metadata.distribution("auditwheel").locate_file(
        "auditwheel/policy/manylinux-policy.json"
    )
    data: list[dict[str, object]] = json.loads(Path(str(located)).read_text(encoding="utf-8"))
    return data


def load_policy(arch: Arch, glibc: GlibcVersion) -> Policy:
    """The manylinux policy for `glibc` (the newest one not above it) and `arch`."""
    best: tuple[int, dict[str, object]] | None = None
    for raw in _manylinux_policies():
        name = str(raw["name"])
        if not name.startswith("manylinux_2_"):
            continue
        minor = int(name.removeprefix("manylinux_2_"))
        if minor <= glibc.minor and (best is None or minor > best[0]):
            best = (minor, raw)
    if best is None:
        raise ConfigError(f"no manylinux policy for glibc {glibc}")
    raw = best[1]
    versions = raw["symbol_versions"]
    assert isinstance(versions, dict)  # noqa: S101 - auditwheel's schema
    per_arch = versions.get(arch.value)
    if per_arch is None:
        raise ConfigError(f"{raw['name']} has no symbol versions for {arch.value}")
    allowed = {prefix: frozenset(values) for prefix, values in per_arch.items()}
    return Policy(name=str(raw["name"]), arch=arch, allowed=allowed)


@cache
def lambda_environment() -> dict[str, str]:
    """The environment a Lambda function's process starts with (`data/lambda-environment.toml`):
    what `pybuild smoke` runs the layer with, and whose LD_LIBRARY_PATH `verify` follows."""
    text = importlib.resources.files("pybuild").joinpath("data/lambda-environment.toml")
    return dict(tomllib.loads(text.read_text("utf-8"))["env"])
