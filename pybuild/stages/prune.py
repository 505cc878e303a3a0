"""The prune stage: remove what the layer provably never uses, and account for every byte.

Rules are data: pybuild's default profile (`pybuild/data/prune-default.toml`) and the layer's
`[prune]` table. Every removed file is listed with its size and the rule that removed it.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pybuild.elf.reader import read_elf
from pybuild.elf.types import ElfError, looks_like_elf
from pybuild.errors import ConfigError
from pybuild.model.layerfile import ALL_FILES, PruneConfig
from pybuild.stages.assemble import RUNTIME, Removal, Tree

UNUSED_LIBPYTHON = "shared libpython that no ELF file needs"
DIST_INFO = "dist-info files nothing reads at run time"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over '/'-separated paths: `*` and `?` stay within a directory, `**`
    crosses directories (`**/` also matches no directory at all)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    owner: str  # "runtime", "wheels", "any", or a distribution name
    patterns: tuple[re.Pattern[str], ...]

    def applies(self, path: str, owner: str) -> bool:
        if self.owner == "wheels" and owner == RUNTIME:
            return False
        if self.owner not in ("any", "wheels") and self.owner != owner:
            return False
        return any(p.match(path) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Defaults:
    rules: tuple[tuple[str, str, tuple[str, ...]], ...]
    dist_info_keep: tuple[re.Pattern[str], ...]


@cache
def _defaults() -> _Defaults:
    text = (
        importlib.resources.files("pybuild").joinpath("data/prune-default.toml").read_text("utf-8")
    )
    raw = tomllib.loads(text)
    rules = tuple((r["name"], r["owner"], tuple(r["paths"])) for r in raw["rules"])
    return _Defaults(rules, tuple(glob_regex(k) for k in raw["dist_info"]["keep"]))


def build_rules(config: PruneConfig, tree: Tree, distributions: set[str]) -> list[Rule]:
    """The rules for this layer: defaults (unless disabled), then the layer's own."""

    def compile_all(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
        return tuple(glob_regex(p.replace("{python}", tree.python)) for p in patterns)

    rules = []
    if config.defaults:
        rules += [Rule(name, owner, compile_all(paths)) for name, owner, paths in _defaults().rules]
    if config.drop:
        rules.append(Rule("layer.toml [prune] drop", "any", compile_all(config.drop)))
    for distribution, globs in config.packages:
        if distribution not in distributions:
            raise ConfigError(
                f"[prune.packages] {distribution}: not a distribution of this "
                f"layer (known: {', '.join(sorted(distributions))})"
            )
        if globs == (ALL_FILES,):
            rules.append(
                Rule(
                    f"layer.toml [prune.packages] {distribution} = all",
                    distribution,
                    (glob_regex("**"),),
                )
            )
            continue
        inside = tuple(f"{tree.site_packages}/{g}" for g in globs)
        rules.append(
            Rule(f"layer.toml [prune.packages] {distribution}", distribution, compile_all(inside))
        )
    return rules


def _dist_info_rule(path: str, tree: Tree) -> bool:
    """Whether `path` is a dist-info file that no run-time reader needs."""
    parts = path.split("/")
    prefix = tree.site_packages.split("/")
    if parts[: len(prefix)] != prefix or len(parts) < len(prefix) + 2:
        return False
    if not parts[len(prefix)].endswith(".dist-info"):
        return False
    inner = "/".join(parts[len(prefix) + 1 :])
    return not any(k.match(inner) for k in _defaults().dist_info_keep)


def _libpython_unused(tree: Tree) -> list[str]:
    """The shared libpython files (and links to them) if no ELF file in the tree needs them."""
    lib = tree.root / "python" / "lib"
    # libpython3.11.so.1.0, its links, and the stable-ABI libpython3.so
    pattern = f"lib{tree.python[:7]}*.so*"
    candidates = sorted(lib.glob(pattern)) if lib.is_dir() else []
    if not candidates:
        return []
    names = {p.name for p in candidates}
    for relative in tree.files():
        path = tree.root / relative
        if path.is_symlink() or path.name in names or not looks_like_elf(path):
            continue
        try:
            needed = read_elf(path, label=relative).needed
        except ElfError:
            continue  # verify reports unreadable files; they cannot need anything we can see
        if names & set(needed):
            return []
    return [p.relative_to(tree.root).as_posix() for p in candidates]


def prune(tree: Tree, config: PruneConfig, distributions: set[str]) -> list[Removal]:
    """Remove every file a rule matches (unless kept); return the removals, sorted by path."""
    rules = build_rules(config, tree, distributions)
    keep = tuple(glob_regex(k.replace("{python}", tree.python)) for k in config.keep)
    removals: dict[str, str] = {}
    for path in tree.files():
        if any(k.match(path) for k in keep):
            continue
        owner = tree.owners.get(path, RUNTIME)
        for rule in rules:
            if rule.applies(path, owner):
                removals[path] = rule.name
                break
        else:
            if config.defaults and _dist_info_rule(path, tree):
                removals[path] = DIST_INFO
    if config.defaults:
        for path in _libpython_unused(tree):
            if not any(k.match(path) for k in keep):
                removals.setdefault(path, UNUSED_LIBPYTHON)
    result = []
    for path, reason in sorted(removals.items()):
        target = tree.root / path
        result.append(Removal(path, target.lstat().st_size, reason))
        target.unlink()
        tree.owners.pop(path, None)
    _remove_empty_directories(tree.root)
    return result


def _remove_empty_directories(root: Path) -> None:
    for directory in sorted(
        (p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()),
        key=lambda p: len(p.parts),
        reverse=True,
    ):
        if not any(directory.iterdir()):
            directory.rmdir()
