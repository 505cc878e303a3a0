"""python-build-standalone: one ``install_only`` archive, everything under ``python/``.

The runtime is the archive `layer.toml` names (or pybuild's table of release assets,
`pybuild/data/pbs-assets.json`, knows for its version, release, triple and flavor). The bytecode
compilers are the same CPython of the same release for each build host: the runtime's own archive
where the host's architecture is the target's, an ``install_only_stripped`` archive for the other.

The archive is unpacked through `pybuild.support.extract` (no member outside ``python/``, no
link leaving the tree, whatever the order of members). Its bundled installers (pip and
setuptools in site-packages, ``bin/pip*``) are not part of a layer: packages come only from the
lock.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from pathlib import Path

from pybuild.errors import LockError
from pybuild.model.layerfile import Layer, PbsRuntime, PinnedUrl, Provider
from pybuild.model.lockfile import LockedFile, LockedRuntime
from pybuild.model.target import Arch, Target
from pybuild.model.tree import RUNTIME, Layout, Removal, Tree
from pybuild.runtimes import Files
from pybuild.support.cache import Cache
from pybuild.support.extract import TreeWriter, UnsafeArchiveError, extract_tar
from pybuild.ui import Ui

COMPILER_FLAVOR = "install_only_stripped"
BUNDLED_INSTALLERS = "runtime's bundled installers (pip, setuptools)"


def triple(arch: Arch) -> str:
    """python-build-standalone's target triple for `arch`, e.g. ``aarch64-unknown-linux-gnu``."""
    return f"{arch.value}-unknown-linux-gnu"


@cache
def _assets() -> dict[tuple[str, str, str, str], PinnedUrl]:
    text = importlib.resources.files("pybuild").joinpath("data/pbs-assets.json").read_text("utf-8")
    table = {}
    for raw in json.loads(text)["assets"]:
        key = (raw["python_version"], raw["release"], raw["target"], raw["flavor"])
        table[key] = PinnedUrl(url=raw["url"], sha256=raw["sha256"], size=raw["size"])
    return table


def known_asset(python_version: str, release: str, arch: Arch, flavor: str) -> PinnedUrl | None:
    """The archive pybuild's table pins for this CPython, release, architecture and flavor."""
    return _assets().get((python_version, release, triple(arch), flavor))


def _locked(spec: PbsRuntime, arch: Arch, flavor: str, pinned: PinnedUrl) -> LockedRuntime:
    return LockedRuntime(
        provider=Provider.PBS,
        python_version=spec.python_version,
        description=f"python-build-standalone {spec.release} {triple(arch)} {flavor}",
        files=(
            LockedFile(
                filename=pinned.filename, sha256=pinned.sha256, size=pinned.size, url=pinned.url
            ),
        ),
    )


class PbsProvider:
    """python-build-standalone archives."""

    def layout(self, target: Target) -> Layout:
        """Wheels go into the interpreter's own ``python/lib/python3.X/site-packages``."""
        return Layout(target.python, f"python/lib/{target.python.executable}/site-packages")

    def lock(
        self, layer: Layer, cache: Cache, ui: Ui
    ) -> tuple[LockedRuntime, tuple[tuple[Arch, LockedRuntime], ...]]:
        """Pin the runtime archive: layer.toml's (which must have the sha256 pybuild's table has for
        it, where the table knows it), else the table's. The compiler for the target's
        architecture is the runtime itself; for the other, layer.toml's ``[runtime.compilers]``
        entry or the table's ``install_only_stripped`` archive.

        LockError if the runtime archive is unknown; an unknown compiler is only warned about and
        left out (such build hosts run the runtime under qemu).
        """
        spec = layer.runtime
        assert isinstance(spec, PbsRuntime)  # noqa: S101 - the provider of this spec
        arch = layer.target.arch
        known = known_asset(spec.python_version, spec.release, arch, spec.flavor)
        archive = spec.archive or known
        if archive is None:
            raise LockError(
                f"{layer.path}: runtime: pybuild does not know the python-build-standalone "
                f"{spec.python_version}+{spec.release} {triple(arch)} {spec.flavor} archive; "
                "pin it with runtime.url, runtime.sha256 and runtime.size"
            )
        if known is not None and spec.archive is not None and known.sha256 != archive.sha256:
            raise LockError(
                f"{layer.path}: runtime.sha256 {archive.sha256} is not the sha256 of "
                f"{archive.filename} ({known.sha256}, pybuild/data/pbs-assets.json)"
            )
        runtime = _locked(spec, arch, spec.flavor, archive)
        explicit = dict(spec.compilers)
        compilers = []
        for host in Arch:
            if host is arch:
                compilers.append((host, runtime))
                continue
            pinned = explicit.get(host) or known_asset(
                spec.python_version, spec.release, host, COMPILER_FLAVOR
            )
            if pinned is None:
                ui.warn(
                    f"no pinned bytecode compiler for {host.value} build hosts (pybuild does not "
                    f"know the {triple(host)} {COMPILER_FLAVOR} archive of {spec.python_version}+"
                    f"{spec.release}; add [runtime.compilers.{host.value}]); such hosts will run "
                    "the runtime's own interpreter under qemu"
                )
                continue
            compilers.append((host, _locked(spec, host, COMPILER_FLAVOR, pinned)))
        return runtime, tuple(compilers)

    def install(
        self, runtime: LockedRuntime, files: Files, tree: Tree, *, reverse: bool = False
    ) -> list[Removal]:
        """Unpack the archive into the tree (a member outside ``python/`` is an UnsafeArchiveError),
        then take out its bundled installers: the removals returned."""
        (archive_file,) = runtime.files
        label = f"runtime archive {archive_file.filename}"

        def inside_python(name: str) -> str:
            if name.split("/", 1)[0] != "python":
                raise UnsafeArchiveError(
                    f"{label}: member {name!r} is outside python/ (not a python-build-standalone "
                    "install_only archive?)"
                )
            return name

        writer = TreeWriter(tree.root, label)
        for written in extract_tar(
            files[archive_file.sha256], writer, select=inside_python, reverse=reverse
        ):
            tree.record(written, RUNTIME)
        interpreter = tree.layout.interpreter
        if interpreter not in tree.entries:
            raise UnsafeArchiveError(
                f"{label} has no {interpreter}: not a CPython {tree.layout.python} runtime"
            )
        return remove_bundled_installers(tree)

    def unpack_compiler(self, compiler: LockedRuntime, files: Files, destination: Path) -> Path:
        """Unpack a compiler archive into `destination`; its ``python/bin/python3.X``."""
        (archive_file,) = compiler.files
        writer = TreeWriter(destination, f"compiler archive {archive_file.filename}")
        extract_tar(files[archive_file.sha256], writer)
        minor = ".".join(compiler.python_version.split(".")[:2])
        return destination / "python" / "bin" / f"python{minor}"


def remove_bundled_installers(tree: Tree) -> list[Removal]:
    """Take the runtime's own pip/setuptools (site-packages and bin/pip*) out of the tree."""
    removed: list[Removal] = []
    prefixes = (f"{tree.layout.site_packages}/", f"{tree.layout.scripts}/pip")
    for relative, entry in list(tree.files()):
        if relative.startswith(prefixes) and entry.owner == RUNTIME:
            removed.append(Removal(relative, entry.size, BUNDLED_INSTALLERS))
            tree.remove(relative)
    return removed
