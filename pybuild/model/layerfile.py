"""`layer.toml`: the human-edited definition of a layer, parsed into frozen dataclasses.

An object of these classes exists only if the file was valid. Every problem found is reported at
once, each naming the key it concerns (``runtime.sha256: missing``), so a user fixes them in one go.
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.errors import ConfigError
from pybuild.model.target import Arch, Target, parse_version2

DEFAULT_LAYER_PATH = Path("layer/layer.toml")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_LAYER_NAME = re.compile(r"[A-Za-z0-9_-]{1,140}")  # what AWS accepts as a layer name
_URL_SCHEMES = ("https", "http", "file")  # http is safe only because the sha256 pins the bytes
_RUNTIME_FLAVORS = ("install_only", "install_only_stripped")


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    """A python-build-standalone archive, pinned by content."""

    url: str
    sha256: str
    size: int
    python_version: str
    release: str
    triple: str
    flavor: str

    @property
    def filename(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])


BYTECODE_MODES = ("unchecked-hash", "checked-hash", "sourceless")
ALL_FILES = "<all files of the distribution>"
SYMLINK_POLICIES = ("copy-small", "drop", "store")
# AWS Lambda quotas: 50 MB zipped for a direct upload, 250 MB unzipped (function + layers).
LAMBDA_ZIP_LIMIT = 52_428_800
LAMBDA_UNPACKED_LIMIT = 262_144_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneConfig:
    """`[prune]`: what to remove besides (or instead of) pybuild's default profile."""

    defaults: bool = True
    drop: tuple[str, ...] = ()  # globs relative to the layer root
    keep: tuple[str, ...] = ()  # globs never removed, whatever rule matches
    # (distribution, globs relative to site-packages); the value "all" in layer.toml removes every
    # file the distribution installed (its console scripts too), given here as ALL_FILES.
    packages: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    """`[bytecode]`, `[archive]` and `[budgets]`."""

    bytecode: str = "unchecked-hash"
    debug_ranges: bool = True  # PEP 657 column positions in the bytecode
    compression_level: int = 12
    symlinks: str = "copy-small"
    zip_budget: int = LAMBDA_ZIP_LIMIT
    unpacked_budget: int = LAMBDA_UNPACKED_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class SmokeConfig:
    """`[smoke]`: what `pybuild smoke` runs besides starting the interpreter and the imports."""

    commands: tuple[str, ...] = ()  # Python code, each run in a fresh interpreter
    scripts: tuple[Path, ...] = ()  # Python files (relative to layer.toml), run the same way
    env: tuple[tuple[str, str], ...] = ()  # added to the Lambda environment
    skip_imports: tuple[tuple[str, str], ...] = ()  # (top-level module, why it is not imported)
    timeout: int = 600  # seconds per interpreter run


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """A parsed, valid `layer.toml`."""

    path: Path
    name: str
    requirements: Path
    target: Target
    runtime: Runtime
    profile: str | None = None  # the system profile (pybuild/data/profiles.toml); None: by glibc
    prune: PruneConfig = PruneConfig()
    options: BuildOptions = BuildOptions()
    smoke: SmokeConfig = SmokeConfig()
    # `[include] site_packages`: the layer's own files and packages, copied into site-packages
    include: tuple[Path, ...] = ()

    @property
    def lock_path(self) -> Path:
        return self.path.parent / "lock.json"


class _Table:
    """Reads one TOML table, recording problems under dotted key paths instead of raising."""

    def __init__(self, data: dict[str, Any], prefix: str, problems: list[str]) -> None:
        self._data = data
        self._prefix = prefix
        self._problems = problems
        self._seen: set[str] = set()
        self.failed = False

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def problem(self, key: str, text: str) -> None:
        self.failed = True
        self._problems.append(f"{self._key(key)}: {text}")

    def get(self, key: str, kind: type, what: str) -> Any:
        self._seen.add(key)
        if key not in self._data:
            self.problem(key, f"missing ({what})")
            return None
        value = self._data[key]
        # bool is an int in Python; a TOML `true` is never a valid size.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(key, f"expected {_TOML_TYPE[kind]}, got {_describe(value)}")
            return None
        return value

    def optional(self, key: str, kind: type, default: Any = None) -> Any:
        if key not in self._data:
            self._seen.add(key)
            return default
        value = self.get(key, kind, "")
        return default if value is None else value

    def strings(self, key: str) -> tuple[str, ...]:
        """An optional array of strings."""
        values = self.optional(key, list, [])
        if not all(isinstance(v, str) for v in values):
            self.problem(key, "expected an array of strings")
            return ()
        return tuple(values)

    def optional_table(self, key: str) -> _Table:
        value = self.optional(key, dict, {})
        return _Table(value, f"{self._key(key)}.", self._problems)

    def table(self, key: str, what: str) -> _Table | None:
        value = self.get(key, dict, what)
        return None if value is None else _Table(value, f"{self._key(key)}.", self._problems)

    def keys(self) -> list[str]:
        return list(self._data)

    def finish(self) -> None:
        for key in sorted(set(self._data) - self._seen):
            self.problem(key, "unknown key")


_TOML_TYPE: dict[type, str] = {
    str: "a string",
    int: "an integer",
    dict: "a table",
    list: "an array",
    bool: "true or false",
}


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def load_layer(path: Path) -> Layer:
    """Read and validate `layer.toml`; raise `ConfigError` naming every bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --layer PATH)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return parse_layer(raw, path)


def parse_layer(raw: dict[str, Any], path: Path) -> Layer:
    problems: list[str] = []
    top = _Table(raw, "", problems)

    name = top.get("name", str, 'the layer\'s name, e.g. "litellm"')
    if name is not None and not _LAYER_NAME.fullmatch(name):
        top.problem("name", f"{name!r} is not a valid Lambda layer name (letters, digits, - and _)")

    requirements = top.get("requirements", str, "path of requirements.txt, relative to layer.toml")
    target_table = top.table("target", "arch, glibc and python")
    profile = None
    if target_table is not None:
        profile = target_table.optional("profile", str)
    target = _parse_target(target_table)
    runtime = _parse_runtime(top.table("runtime", "url, sha256 and size of the PBS archive"))
    prune = _parse_prune(top.optional_table("prune"))
    options = _parse_options(top)
    smoke = _parse_smoke(top.optional_table("smoke"), path.parent)
    include = _parse_include(top.optional_table("include"), path.parent)
    top.finish()

    if target is not None and runtime is not None:
        _check_runtime_fits(target, runtime, problems)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    assert target is not None and runtime is not None  # noqa: S101 - no problems means all parsed
    return Layer(
        path=path,
        name=name,
        requirements=path.parent / requirements,
        target=target,
        runtime=runtime,
        profile=profile,
        prune=prune,
        options=options,
        smoke=smoke,
        include=include,
    )


def _parse_include(table: _Table, base: Path) -> tuple[Path, ...]:
    paths = tuple(base / entry for entry in table.strings("site_packages"))
    for entry in paths:
        if not entry.exists():
            table.problem("site_packages", f"{entry}: no such file or directory")
        elif entry.is_symlink():
            table.problem("site_packages", f"{entry}: a symbolic link (give the real path)")
    table.finish()
    return paths


def _string_table(table: _Table, what: str) -> tuple[tuple[str, str], ...]:
    items = []
    for key in sorted(table.keys()):
        value = table.get(key, str, what)
        if value is not None:
            items.append((key, value))
    table.finish()
    return tuple(items)


def _parse_smoke(table: _Table, base: Path) -> SmokeConfig:
    commands = table.strings("commands")
    scripts = tuple(base / script for script in table.strings("scripts"))
    for script in scripts:
        if not script.is_file():
            table.problem("scripts", f"{script}: no such file")
    env = _string_table(table.optional_table("env"), "a string value")
    skip = _string_table(table.optional_table("skip_imports"), "why the module is not imported")
    timeout = table.optional("timeout", int, 600)
    if timeout <= 0:
        table.problem("timeout", f"{timeout} is not a positive number of seconds")
    table.finish()
    return SmokeConfig(
        commands=commands, scripts=scripts, env=env, skip_imports=skip, timeout=timeout
    )


def _check_globs(table: _Table, key: str, globs: tuple[str, ...]) -> None:
    for pattern in globs:
        if pattern.startswith("/") or ".." in pattern.split("/") or not pattern.strip("/*"):
            table.problem(key, f"{pattern!r} must be a relative glob that stays inside the layer")


def _parse_prune(table: _Table) -> PruneConfig:
    defaults = table.optional("defaults", bool, True)
    drop = table.strings("drop")
    keep = table.strings("keep")
    _check_globs(table, "drop", drop)
    _check_globs(table, "keep", keep)
    packages_table = table.optional_table("packages")
    packages: list[tuple[str, tuple[str, ...]]] = []
    for name in sorted(packages_table.keys()):
        value = packages_table.optional(name, object)
        if isinstance(value, str):
            if value != "all":
                packages_table.problem(name, f'expected an array of globs or "all", got {value!r}')
            packages.append((name, (ALL_FILES,)))
            continue
        globs = packages_table.strings(name)
        _check_globs(packages_table, name, globs)
        packages.append((name, globs))
    packages_table.finish()
    table.finish()
    return PruneConfig(defaults=defaults, drop=drop, keep=keep, packages=tuple(packages))


def _parse_options(top: _Table) -> BuildOptions:
    bytecode = top.optional_table("bytecode")
    mode = bytecode.optional("mode", str, "unchecked-hash")
    if mode not in BYTECODE_MODES:
        bytecode.problem("mode", f"{mode!r} is not one of {', '.join(BYTECODE_MODES)}")
    debug_ranges = bytecode.optional("debug_ranges", bool, True)
    bytecode.finish()

    archive = top.optional_table("archive")
    level = archive.optional("compression_level", int, 12)
    if not 1 <= level <= 12:
        archive.problem("compression_level", f"{level} is not a libdeflate level (1-12)")
    symlinks = archive.optional("symlinks", str, "copy-small")
    if symlinks not in SYMLINK_POLICIES:
        archive.problem("symlinks", f"{symlinks!r} is not one of {', '.join(SYMLINK_POLICIES)}")
    archive.finish()

    budgets = top.optional_table("budgets")
    zip_budget = budgets.optional("zip_bytes", int, LAMBDA_ZIP_LIMIT)
    unpacked_budget = budgets.optional("unpacked_bytes", int, LAMBDA_UNPACKED_LIMIT)
    for key, value, limit in (
        ("zip_bytes", zip_budget, LAMBDA_ZIP_LIMIT),
        ("unpacked_bytes", unpacked_budget, LAMBDA_UNPACKED_LIMIT),
    ):
        if not 0 < value <= limit:
            budgets.problem(key, f"{value} is not between 1 and Lambda's limit of {limit:,}")
    budgets.finish()
    return BuildOptions(
        bytecode=mode,
        debug_ranges=debug_ranges,
        compression_level=level,
        symlinks=symlinks,
        zip_budget=zip_budget,
        unpacked_budget=unpacked_budget,
    )


def _parse_target(table: _Table | None) -> Target | None:
    if table is None:
        return None
    arch_text = table.get("arch", str, "aarch64 or x86_64")
    glibc_text = table.get("glibc", str, 'the glibc ceiling, e.g. "2.34" for Amazon Linux 2023')
    python_text = table.get("python", str, 'the Python minor version, e.g. "3.11"')
    table.finish()

    arch = glibc = python = None
    if arch_text is not None:
        try:
            arch = Arch(arch_text)
        except ValueError:
            choices = ", ".join(a.value for a in Arch)
            table.problem("arch", f"{arch_text!r} is not one of {choices}")
    if glibc_text is not None:
        try:
            glibc = parse_version2(glibc_text, major=2)
        except ValueError as err:
            table.problem("glibc", str(err))
        else:
            if arch is not None and glibc[1] < arch.oldest_manylinux:
                table.problem(
                    "glibc",
                    f"{glibc_text} is older than any manylinux policy for "
                    f"{arch.value} (2.{arch.oldest_manylinux})",
                )
    if python_text is not None:
        try:
            python = parse_version2(python_text, major=3)
        except ValueError as err:
            table.problem("python", str(err))
    if table.failed or arch is None or glibc is None or python is None:
        return None
    return Target(arch=arch, glibc=glibc, python=python)


def _parse_runtime(table: _Table | None) -> Runtime | None:
    if table is None:
        return None
    url = table.get("url", str, "where the python-build-standalone archive is downloaded")
    sha256 = table.get("sha256", str, "a runtime URL must be pinned by its sha256")
    size = table.get("size", int, "the archive's size in bytes")
    python_version = table.get("python_version", str, 'the runtime\'s Python, e.g. "3.11.15"')
    release = table.get("release", str, 'the PBS release tag, e.g. "20260414"')
    triple = table.get("triple", str, 'e.g. "aarch64-unknown-linux-gnu"')
    flavor = table.get("flavor", str, "install_only or install_only_stripped")
    table.finish()

    if url is not None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in _URL_SCHEMES:
            table.problem("url", f"{url!r}: scheme must be one of {', '.join(_URL_SCHEMES)}")
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        table.problem("sha256", f"{sha256!r} is not 64 lowercase hex digits")
    if size is not None and size <= 0:
        table.problem("size", f"{size} is not a positive number of bytes")
    if python_version is not None and not re.fullmatch(r"3\.\d+\.\d+", python_version):
        table.problem("python_version", f"{python_version!r} is not of the form '3.N.M'")
    if release is not None and not re.fullmatch(r"\d{8}", release):
        table.problem("release", f"{release!r} is not a PBS release tag (YYYYMMDD)")
    if triple is not None and not re.fullmatch(r"(aarch64|x86_64)-unknown-linux-gnu", triple):
        table.problem("triple", f"{triple!r} is not a glibc Linux triple (ARCH-unknown-linux-gnu)")
    if flavor is not None and flavor not in _RUNTIME_FLAVORS:
        table.problem("flavor", f"{flavor!r} is not one of {', '.join(_RUNTIME_FLAVORS)}")

    if table.failed:
        return None
    return Runtime(
        url=url,
        sha256=sha256,
        size=size,
        python_version=python_version,
        release=release,
        triple=triple,
        flavor=flavor,
    )


def _check_runtime_fits(target: Target, runtime: Runtime, problems: list[str]) -> None:
    if not runtime.triple.startswith(f"{target.arch.value}-"):
        problems.append(
            f"runtime.triple: {runtime.triple!r} does not match target.arch {target.arch.value!r}"
        )
    if not runtime.python_version.startswith(f"{target.python_str}."):
        problems.append(
            f"runtime.python_version: {runtime.python_version!r} does not match "
            f"target.python {target.python_str!r}"
        )
