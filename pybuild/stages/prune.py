"""The prune stage: remove what the layer provably never uses, and account for every byte.

Rules are data: pybuild's default profile (`pybuild/data/prune-default.toml`), the rule files a
layer names (`[prune] rules`, same format: e.g. a generated list of standard-library modules no
import reaches) and the layer's `[prune]` table. Globs may say ``{python}`` (``python3.11``) and
``{site_packages}`` (the runtime's, e.g. ``python/lib/python3.11/site-packages``). Every removed
file is listed with its size and the rule that removed it. The tree's inventory says what is
there and who owns it: nothing is walked.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass
from functools import cache

from pybuild.errors import ConfigError
from pybuild.model.layerfile import PruneConfig
from pybuild.model.tree import RUNTIME, Owner, OwnerKind, Removal, Tree

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

    def applies(self, path: str, owner: Owner) -> bool:
        if self.owner == "wheels" and owner.kind is not OwnerKind.WHEEL:
            return False
        if self.owner == "runtime" and owner != RUNTIME:
            return False
        if self.owner not in ("any", "wheels", "runtime") and self.owner != owner.name:
            return False
        return any(p.match(path) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Defaults:
    rules: tuple[tuple[str, str, tuple[str, ...]], ...]
    dist_info_keep: tuple[re.Pattern[str], ...]


def _rule_file(text: str, source: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The [[rules]] of a rule file: (name, owner, globs), checked."""
    try:
        raw = tomllib.loads(text)
        rules = [(r["name"], r["owner"], tuple(r["paths"])) for r in raw.get("rules", [])]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{source}: not a prune rule file ({err})") from None
    for name, owner, paths in rules:
        if not all(isinstance(x, str) for x in (name, owner, *paths)):
            raise ConfigError(f"{source}: rule {name!r}: names, owners and paths are strings")
    return rules


@cache
def _defaults() -> _Defaults:
    text = (
        importlib.resources.files("pybuild").joinpath("data/prune-default.toml").read_text("utf-8")
    )
    raw = tomllib.loads(text)
    rules = tuple(_rule_file(text, "pybuild/data/prune-default.toml"))
    return _Defaults(rules, tuple(glob_regex(k) for k in raw["dist_info"]["keep"]))


def expand(pattern: str, tree: Tree) -> str:
    """A glob with its placeholders filled in for this tree."""
    return pattern.replace("{site_packages}", tree.layout.site_packages).replace(
        "{python}", tree.layout.python.executable
    )


def build_rules(config: PruneConfig, tree: Tree, distributions: set[str]) -> list[Rule]:
    """The rules for this layer: defaults (unless disabled), its rule files, its own table."""

    def compile_all(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
        return tuple(glob_regex(expand(p, tree)) for p in patterns)

    rules = []
    if config.defaults:
        rules += [Rule(name, owner, compile_all(paths)) for name, owner, paths in _defaults().rules]
    for path in config.rules:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"[prune] rules: {path}: {err.strerror or err}") from None
        for name, owner, paths in _rule_file(text, str(path)):
            rules.append(Rule(f"{path.name}: {name}", owner, compile_all(paths)))
    if config.drop:
        rules.append(Rule("layer.toml [prune] drop", "any", compile_all(config.drop)))
    for distribution, globs in config.packages:
        if distribution not in distributions:
            raise ConfigError(
                f"[prune.packages] {distribution}: not a distribution of this "
                f"layer (known: {', '.join(sorted(distributions))})"
            )
        if globs is None:
            rules.append(
                Rule(
                    f"layer.toml [prune.packages] {distribution} = all",
                    distribution,
                    (glob_regex("**"),),
                )
            )
            continue
        inside = tuple(f"{tree.layout.site_packages}/{g}" for g in globs)
        rules.append(
            Rule(f"layer.toml [prune.packages] {distribution}", distribution, compile_all(inside))
        )
    return rules


def _dist_info_rule(path: str, tree: Tree) -> bool:
    """Whether `path` is a dist-info file that no run-time reader needs."""
    parts = path.split("/")
    prefix = tree.layout.site_packages.split("/")
    if parts[: len(prefix)] != prefix or len(parts) < len(prefix) + 2:
        return False
    if not parts[len(prefix)].endswith(".dist-info"):
        return False
    inner = "/".join(parts[len(prefix) + 1 :])
    return not any(k.match(inner) for k in _defaults().dist_info_keep)


def _libpython_unused(tree: Tree) -> list[str]:
    """The shared libpython files (and links to them) if no ELF file in the tree needs them."""
    pattern = glob_regex(f"python/lib/lib{tree.layout.python.executable}*.so*")
    # libpython3.11.so.1.0, its links, and the stable-ABI libpython3.so
    stable = glob_regex(f"python/lib/libpython{tree.layout.python.major}.so*")
    candidates = [p for p in tree.paths() if pattern.match(p) or stable.match(p)]
    if not candidates:
        return []
    names = {p.rsplit("/", 1)[-1] for p in candidates}
    for relative, entry in tree.files():
        if relative in candidates or not entry.elf_magic:
            continue
        elf = tree.elf(relative)
        if elf is not None and names & set(elf.needed):
            return []
    return candidates


def prune(tree: Tree, config: PruneConfig, distributions: set[str]) -> list[Removal]:
    """Remove every file a rule matches (unless kept); return the removals, sorted by path."""
    rules = build_rules(config, tree, distributions)
    keep = tuple(glob_regex(expand(k, tree)) for k in config.keep)
    removals: dict[str, str] = {}
    for path, entry in tree.files():
        if any(k.match(path) for k in keep):
            continue
        for rule in rules:
            if rule.applies(path, entry.owner):
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
        result.append(Removal(path, tree.remove(path).size, reason))
    tree.remove_empty_directories()
    return result
