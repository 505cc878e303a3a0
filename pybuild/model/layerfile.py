"""`layer.toml`: the human-edited definition of a layer, parsed into frozen dataclasses.

An object of these classes exists only if the file was valid. Every problem found is reported at
once, each naming the key it concerns (``runtime.sha256: missing``), so a user fixes them in one
go. A layer may `extends` another file: tables merge key by key (the extending file wins),
arrays and values are replaced, and ``[runtime]`` is replaced whole; paths keep meaning what
they meant in the file that wrote them.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.elf.policy import Profile, profile_for
from pybuild.errors import ConfigError
from pybuild.model.target import Arch, Target
from pybuild.model.versions import GlibcVersion, PythonVersion
from pybuild.support.fsutil import resolve_path
from pybuild.support.inputs import parse_toml, read_failure, read_input

DEFAULT_LAYER_PATH = Path("layer/layer.toml")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_LAYER_NAME = re.compile(r"[A-Za-z0-9_-]{1,140}")  # what AWS accepts as a layer name
_URL_SCHEMES = ("https", "http", "file")  # http is safe only because the sha256 pins the bytes
_PBS_FLAVORS = ("install_only", "install_only_stripped")
# A distribution's normalized name (PEP 503, as lock.json writes it), or "runtime".
_OWNER_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Keys whose values are paths relative to the file that wrote them (kept so through `extends`).
_PATH_KEYS = (
    ("requirements",),
    ("smoke", "scripts"),
    ("include", "site_packages"),
    ("prune", "rules"),
    ("runtime", "keyring"),
)

# AWS Lambda quotas: 50 MB zipped for a direct upload, 250 MB unzipped (function + all layers).
LAMBDA_ZIP_LIMIT = 52_428_800
LAMBDA_UNPACKED_LIMIT = 262_144_000

MAX_EXTENDS_CHAIN = 32  # files in one chain of `extends` (a loop is refused before that)


class BytecodeMode(enum.StrEnum):
    """How the layer's Python modules are shipped."""

    UNCHECKED_HASH = "unchecked-hash"  # __pycache__/*.pyc beside sources, never re-validated
    CHECKED_HASH = "checked-hash"  # the same, validated against the source at every import
    SOURCELESS = "sourceless"  # module.pyc in place of module.py


class SymlinkPolicy(enum.StrEnum):
    """What the zip does with symbolic links (AWS documents nothing about them in layers)."""

    COPY_SMALL = "copy-small"  # a link to a small file of the layer becomes a copy; others go
    DROP = "drop"
    STORE = "store"  # real zip symlink entries


class Provider(enum.StrEnum):
    """Where a layer's Python comes from (`pybuild.runtimes`)."""

    PBS = "python-build-standalone"
    DEBIAN = "debian"


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedUrl:
    """A file to download, pinned by content."""

    url: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        """The file's name: the last segment of the URL's path, percent-decoded."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])


@dataclass(frozen=True, slots=True, kw_only=True)
class PbsRuntime:
    """A python-build-standalone release. The archive and the compilers for each build host are
    pybuild's table (`pybuild/data/pbs-assets.json`) unless layer.toml pins them itself."""

    python_version: str  # "3.11.15"
    release: str  # "20260414"
    flavor: str  # install_only or install_only_stripped
    archive: PinnedUrl | None = None
    compilers: tuple[tuple[Arch, PinnedUrl], ...] = ()

    provider = Provider.PBS


@dataclass(frozen=True, slots=True, kw_only=True)
class DebianRuntime:
    """Debian's own python3.X packages of a release (a Debian system, not a Lambda image)."""

    suite: str  # "bookworm"
    mirrors: tuple[tuple[str, str], ...] = ()  # (archive, base URL) overriding the defaults
    keyring: Path | None = None  # what signs the mirrors' InRelease (default: Debian's keyring)

    provider = Provider.DEBIAN


RuntimeSpec = PbsRuntime | DebianRuntime


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneConfig:
    """`[prune]`: what to remove besides (or instead of) pybuild's default profile."""

    defaults: bool = True
    drop: tuple[str, ...] = ()  # globs relative to the layer root
    keep: tuple[str, ...] = ()  # globs never removed, whatever rule matches
    # (distribution, globs relative to site-packages); "all" in layer.toml removes every file
    # the distribution installed (its console scripts too).
    packages: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    rules: tuple[Path, ...] = ()  # rule files in the default profile's format


@dataclass(frozen=True, slots=True, kw_only=True)
class Budgets:
    """`[budgets]`: the layer's own size goals. Lambda's limits always apply besides them; a goal
    only fails the build when `strict` (or `pybuild build --strict`)."""

    zip_bytes: int | None = None
    unpacked_bytes: int | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    """`[bytecode]`, `[archive]` and `[budgets]`."""

    bytecode: BytecodeMode = BytecodeMode.UNCHECKED_HASH
    debug_ranges: bool = True  # PEP 657 column positions in the bytecode
    # Owners ("runtime" or distribution names) whose modules are compiled without docstrings
    strip_docstrings: tuple[str, ...] = ()
    compression_level: int = 12
    symlinks: SymlinkPolicy = SymlinkPolicy.COPY_SMALL
    budgets: Budgets = Budgets()


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
    profile: Profile  # what the target's system gives a layer (pybuild/data/profiles.toml)
    runtime: RuntimeSpec
    prune: PruneConfig = PruneConfig()
    options: BuildOptions = BuildOptions()
    smoke: SmokeConfig = SmokeConfig()
    # `[include] site_packages`: the layer's own files and packages, copied into site-packages
    include: tuple[Path, ...] = ()

    @property
    def lock_path(self) -> Path:
        """lock.json, beside the layer.toml that was loaded (with `extends`: the extending file's,
        not its base's)."""
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
        """Record a problem with `key` (under the table's prefix); the table has then failed."""
        self.failed = True
        self._problems.append(f"{self._key(key)}: {text}")

    def get(self, key: str, kind: type, what: str) -> Any:
        """The value of a required `key` if it is a `kind` (true or false is not an int); else None,
        with "missing (`what`)" or the wrong type recorded."""
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
        """The value of `key` if it is a `kind`; `default` if it is absent or of another type (then
        recorded)."""
        if key not in self._data:
            self._seen.add(key)
            return default
        value = self.get(key, kind, "")
        return default if value is None else value

    def choice(self, key: str, kind: type[enum.StrEnum], default: enum.StrEnum) -> Any:
        """The value of `key` as a member of the enum `kind`; `default` if it is absent or not one
        of its values (then recorded)."""
        text = self.optional(key, str, default.value)
        try:
            return kind(text)
        except ValueError:
            self.problem(key, f"{text!r} is not one of {', '.join(v.value for v in kind)}")
            return default

    def strings(self, key: str) -> tuple[str, ...]:
        """An optional array of strings."""
        values = self.optional(key, list, [])
        if not all(isinstance(v, str) for v in values):
            self.problem(key, "expected an array of strings")
            return ()
        return tuple(values)

    def optional_table(self, key: str) -> _Table:
        """The sub-table `key`; an empty one if it is absent or not a table (then recorded)."""
        value = self.optional(key, dict, {})
        return _Table(value, f"{self._key(key)}.", self._problems)

    def table(self, key: str, what: str) -> _Table | None:
        """The required sub-table `key`; None if it is missing or not a table (then recorded, with
        `what`)."""
        value = self.get(key, dict, what)
        return None if value is None else _Table(value, f"{self._key(key)}.", self._problems)

    def has(self, key: str) -> bool:
        """Whether `key` is present (it is not marked as read)."""
        return key in self._data

    def keys(self) -> list[str]:
        """The keys present, in the file's order (not marked as read)."""
        return list(self._data)

    def finish(self) -> None:
        """Record every key that nothing read as an unknown key; call it once the table is read."""
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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return parse_toml(read_input(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --layer PATH)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {read_failure(err)}") from None
    except ValueError as err:  # tomllib.TOMLDecodeError, or a parser limit
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _anchor_paths(raw: dict[str, Any], base: Path) -> None:
    """Make the path-valued keys of a file that is extended absolute (relative to `base`)."""
    for keys in _PATH_KEYS:
        table = raw
        for key in keys[:-1]:
            table = table.get(key) if isinstance(table.get(key), dict) else {}  # type: ignore[assignment]
        value = table.get(keys[-1])
        if isinstance(value, str):
            table[keys[-1]] = str(base / value)
        elif isinstance(value, list):
            table[keys[-1]] = [str(base / v) if isinstance(v, str) else v for v in value]


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` merged over `base`, table by table (in a loop: tables may nest deeper than Python
    recurses); ``[runtime]`` is replaced whole."""
    merged = dict(base)
    pending = [(merged, child, True)]
    while pending:
        into, overlay, top = pending.pop()
        for key, value in overlay.items():
            old = into.get(key)
            if isinstance(value, dict) and isinstance(old, dict) and not (top and key == "runtime"):
                into[key] = dict(old)
                pending.append((into[key], value, False))
            else:
                into[key] = value
    return merged


def _load_raw(path: Path) -> dict[str, Any]:
    """The file's table with everything it `extends` merged in: the chain is followed in a loop,
    at most `MAX_EXTENDS_CHAIN` files long, then merged from its farthest base."""
    chain: list[tuple[Path, dict[str, Any]]] = []  # from `path` to its farthest base
    seen: list[Path] = []
    current = path
    while True:
        raw = _read_toml(current)
        resolved = resolve_path(current)
        if resolved in seen:
            raise ConfigError(f"{current}: extends itself (through {' -> '.join(map(str, seen))})")
        seen.append(resolved)
        chain.append((current, raw))
        parent = raw.pop("extends", None)
        if parent is None:
            break
        if not isinstance(parent, str):
            raise ConfigError(
                f"{current}: extends: expected a string (a path to another layer.toml)"
            )
        if len(chain) >= MAX_EXTENDS_CHAIN:
            raise ConfigError(
                f"{path}: extends: a chain of more than {MAX_EXTENDS_CHAIN} files "
                f"({current} extends {parent!r})"
            )
        parent_path = current.parent / parent
        if not parent_path.exists():
            raise ConfigError(f"{current}: extends: {parent_path}: no such file")
        current = parent_path
    base_path, merged = chain[-1]
    for child_path, child in reversed(chain[:-1]):
        _anchor_paths(merged, base_path.parent.absolute())
        merged = _merge(merged, child)
        base_path = child_path
    return merged


def load_layer(path: Path) -> Layer:
    """Read and validate `layer.toml`; raise `ConfigError` naming every bad key."""
    return parse_layer(_load_raw(path), path)


def parse_layer(raw: dict[str, Any], path: Path) -> Layer:
    """A `Layer` from the table of the layer.toml at `path` (`extends` already merged in); relative
    paths are taken from `path`'s directory. Raises `ConfigError` naming every bad key at once."""
    problems: list[str] = []
    top = _Table(raw, "", problems)

    name = top.get("name", str, 'the layer\'s name, e.g. "litellm"')
    if name is not None and not _LAYER_NAME.fullmatch(name):
        top.problem("name", f"{name!r} is not a valid Lambda layer name (letters, digits, - and _)")

    requirements = top.get("requirements", str, "path of requirements.txt, relative to layer.toml")
    target_table = top.table("target", "arch, glibc and python")
    target, profile = _parse_target(target_table)
    runtime = _parse_runtime(
        top.table("runtime", "where the layer's Python comes from"), target, path.parent
    )
    prune = _parse_prune(top.optional_table("prune"), path.parent)
    options = _parse_options(top)
    smoke = _parse_smoke(top.optional_table("smoke"), path.parent)
    include = _parse_include(top.optional_table("include"), path.parent)
    top.finish()

    if problems:
        if len(problems) == 1:
            raise ConfigError(f"{path}: {problems[0]}")
        raise ConfigError(f"{path}: {len(problems)} problems", problems)
    assert target is not None and runtime is not None and profile is not None  # noqa: S101
    return Layer(
        path=path,
        name=name,
        requirements=path.parent / requirements,
        target=target,
        profile=profile,
        runtime=runtime,
        prune=prune,
        options=options,
        smoke=smoke,
        include=include,
    )


def _existing_paths(table: _Table, key: str, base: Path, what: str) -> tuple[Path, ...]:
    paths = tuple(base / entry for entry in table.strings(key))
    for entry in paths:
        if not entry.exists():
            table.problem(key, f"{entry}: no such {what}")
        elif entry.is_symlink():
            table.problem(key, f"{entry}: a symbolic link (give the real path)")
    return paths


def _parse_include(table: _Table, base: Path) -> tuple[Path, ...]:
    paths = _existing_paths(table, "site_packages", base, "file or directory")
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
    scripts = _existing_paths(table, "scripts", base, "file")
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


def _parse_prune(table: _Table, base: Path) -> PruneConfig:
    defaults = table.optional("defaults", bool, True)
    drop = table.strings("drop")
    keep = table.strings("keep")
    _check_globs(table, "drop", drop)
    _check_globs(table, "keep", keep)
    rules = _existing_paths(table, "rules", base, "rule file")
    packages_table = table.optional_table("packages")
    packages: list[tuple[str, tuple[str, ...] | None]] = []
    for name in sorted(packages_table.keys()):
        value = packages_table.optional(name, object)
        if isinstance(value, str):
            if value != "all":
                packages_table.problem(name, f'expected an array of globs or "all", got {value!r}')
            packages.append((name, None))
            continue
        globs = packages_table.strings(name)
        _check_globs(packages_table, name, globs)
        packages.append((name, globs))
    packages_table.finish()
    table.finish()
    return PruneConfig(
        defaults=defaults, drop=drop, keep=keep, packages=tuple(packages), rules=rules
    )


def _parse_options(top: _Table) -> BuildOptions:
    bytecode = top.optional_table("bytecode")
    mode = bytecode.choice("mode", BytecodeMode, BytecodeMode.UNCHECKED_HASH)
    debug_ranges = bytecode.optional("debug_ranges", bool, True)
    strip_docstrings = bytecode.strings("strip_docstrings")
    seen: set[str] = set()
    for owner in strip_docstrings:
        if owner in seen:
            bytecode.problem("strip_docstrings", f"{owner!r} is listed twice")
        elif not _OWNER_NAME.fullmatch(owner):
            bytecode.problem(
                "strip_docstrings",
                f'{owner!r} is neither "runtime" nor a distribution name (as in lock.json)',
            )
        seen.add(owner)
    bytecode.finish()

    archive = top.optional_table("archive")
    level = archive.optional("compression_level", int, 12)
    if not 1 <= level <= 12:
        archive.problem("compression_level", f"{level} is not a libdeflate level (1-12)")
    symlinks = archive.choice("symlinks", SymlinkPolicy, SymlinkPolicy.COPY_SMALL)
    archive.finish()

    table = top.optional_table("budgets")
    zip_goal = table.optional("zip_bytes", int)
    unpacked_goal = table.optional("unpacked_bytes", int)
    for key, value, limit in (
        ("zip_bytes", zip_goal, LAMBDA_ZIP_LIMIT),
        ("unpacked_bytes", unpacked_goal, LAMBDA_UNPACKED_LIMIT),
    ):
        if value is not None and not 0 < value <= limit:
            table.problem(key, f"{value} is not between 1 and Lambda's limit of {limit:,}")
    strict = table.optional("strict", bool, False)
    table.finish()
    return BuildOptions(
        bytecode=mode,
        debug_ranges=debug_ranges,
        strip_docstrings=strip_docstrings,
        compression_level=level,
        symlinks=symlinks,
        budgets=Budgets(zip_bytes=zip_goal, unpacked_bytes=unpacked_goal, strict=strict),
    )


def _parse_target(table: _Table | None) -> tuple[Target | None, Profile | None]:
    if table is None:
        return None, None
    arch_text = table.get("arch", str, "aarch64 or x86_64")
    glibc_text = table.get("glibc", str, 'the glibc ceiling, e.g. "2.34" for Amazon Linux 2023')
    python_text = table.get("python", str, 'the Python minor version, e.g. "3.11"')
    profile_name = table.optional("profile", str)
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
            glibc = GlibcVersion.parse(glibc_text)
        except ValueError as err:
            table.problem("glibc", str(err))
        else:
            if arch is not None and glibc.minor < arch.oldest_manylinux:
                table.problem(
                    "glibc",
                    f"{glibc_text} is older than any manylinux policy for "
                    f"{arch.value} (2.{arch.oldest_manylinux})",
                )
    if python_text is not None:
        try:
            python = PythonVersion.parse(python_text)
        except ValueError as err:
            table.problem("python", str(err))
    if table.failed or arch is None or glibc is None or python is None:
        return None, None
    try:
        profile = profile_for(glibc, profile_name)
    except ConfigError as err:
        table.problem("profile" if profile_name else "glibc", str(err))
        return None, None
    return Target(arch=arch, glibc=glibc, python=python), profile


def _pinned_url(table: _Table, *, required: bool) -> PinnedUrl | None:
    """url + sha256 + size (all three, or with `required` false none of them)."""
    if not required and not any(table.has(k) for k in ("url", "sha256", "size")):
        return None
    url = table.get("url", str, "where the file is downloaded")
    sha256 = table.get("sha256", str, "a URL must be pinned by its sha256")
    size = table.get("size", int, "the file's size in bytes")
    if url is not None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in _URL_SCHEMES:
            table.problem("url", f"{url!r}: scheme must be one of {', '.join(_URL_SCHEMES)}")
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        table.problem("sha256", f"{sha256!r} is not 64 lowercase hex digits")
    if size is not None and size <= 0:
        table.problem("size", f"{size} is not a positive number of bytes")
    if url is None or sha256 is None or size is None or table.failed:
        return None
    return PinnedUrl(url=url, sha256=sha256, size=size)


def _parse_runtime(table: _Table | None, target: Target | None, base: Path) -> RuntimeSpec | None:
    if table is None:
        return None
    provider_text = table.optional("provider", str, Provider.PBS.value)
    try:
        provider = Provider(provider_text)
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        table.problem("provider", f"{provider_text!r} is not one of {choices}")
        return None
    if provider is Provider.DEBIAN:
        return _parse_debian(table, base)
    return _parse_pbs(table, target)


def _parse_debian(table: _Table, base: Path) -> DebianRuntime | None:
    suite = table.get("suite", str, 'the Debian release, e.g. "bookworm"')
    keyring_text = table.optional("keyring", str)
    keyring = None if keyring_text is None else base / keyring_text
    if keyring is not None and not keyring.is_file():
        table.problem("keyring", f"{keyring}: no such file")
    mirrors_table = table.optional_table("mirrors")
    mirrors = _string_table(mirrors_table, "a mirror's base URL")
    for archive, url in mirrors:
        if urllib.parse.urlsplit(url).scheme not in _URL_SCHEMES:
            table.problem(f"mirrors.{archive}", f"{url!r}: not an http(s) or file URL")
    table.finish()
    if suite is None or table.failed:
        return None
    return DebianRuntime(suite=suite, mirrors=mirrors, keyring=keyring)


def _parse_pbs(table: _Table, target: Target | None) -> PbsRuntime | None:
    python_version = table.get("python_version", str, 'the runtime\'s Python, e.g. "3.11.15"')
    release = table.get("release", str, 'the PBS release tag, e.g. "20260414"')
    flavor = table.get("flavor", str, "install_only or install_only_stripped")
    triple = table.optional("triple", str)
    archive = _pinned_url(table, required=False)
    compilers_table = table.optional_table("compilers")
    compilers: list[tuple[Arch, PinnedUrl]] = []
    for key in sorted(compilers_table.keys()):
        try:
            arch = Arch(key)
        except ValueError:
            compilers_table.problem(
                key, f"not an architecture ({', '.join(a.value for a in Arch)})"
            )
            continue
        sub = compilers_table.table(key, "url, sha256 and size of an install_only_stripped archive")
        pinned = _pinned_url(sub, required=True) if sub is not None else None
        if sub is not None:
            sub.finish()
        if pinned is not None:
            compilers.append((arch, pinned))
    compilers_table.finish()
    table.finish()

    if python_version is not None and not re.fullmatch(r"3\.\d+\.\d+", python_version):
        table.problem("python_version", f"{python_version!r} is not of the form '3.N.M'")
    if release is not None and not re.fullmatch(r"\d{8}", release):
        table.problem("release", f"{release!r} is not a PBS release tag (YYYYMMDD)")
    if flavor is not None and flavor not in _PBS_FLAVORS:
        table.problem("flavor", f"{flavor!r} is not one of {', '.join(_PBS_FLAVORS)}")
    if target is not None:
        expected = f"{target.arch.value}-unknown-linux-gnu"
        if triple is not None and triple != expected:
            table.problem("triple", f"{triple!r} does not match target.arch {target.arch.value!r}")
        if python_version is not None and not target.python.matches(python_version):
            table.problem(
                "python_version",
                f"{python_version!r} does not match target.python {str(target.python)!r}",
            )
    if table.failed or python_version is None or release is None or flavor is None:
        return None
    return PbsRuntime(
        python_version=python_version,
        release=release,
        flavor=flavor,
        archive=archive,
        compilers=tuple(compilers),
    )
