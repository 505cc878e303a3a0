"""Where a layer's Python comes from: a seam with two implementations.

- `pybuild.runtimes.pbs`: python-build-standalone (the default), one archive per runtime;
- `pybuild.runtimes.debian`: Debian's own python3.X packages (a Debian 12 system, not a Lambda
  image: for machines that cannot reach GitHub, and for the tests).

A provider pins every input of a runtime in the lock (`lock`), says where it puts site-packages
(`layout`), lays the fetched files out as the layer's ``python/`` (`install`), and unpacks the
same CPython for the build host to compile bytecode with (`unpack_compiler`). Fetch, the SBOM and
Nix treat its files like wheels: a file name, a sha256, a size and where to download it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from pybuild.model.layerfile import Layer, Provider
from pybuild.model.lockfile import LockedRuntime
from pybuild.model.target import Arch, Target
from pybuild.model.tree import Layout, Removal, Tree
from pybuild.support.cache import Cache
from pybuild.ui import Ui

Files = Mapping[str, Path]  # sha256 -> the fetched file


class RuntimeProvider(Protocol):
    """What pybuild needs from a source of CPython runtimes."""

    def layout(self, target: Target) -> Layout:
        """Where the runtime's interpreter, standard library and site-packages are."""
        ...

    def lock(
        self, layer: Layer, cache: Cache, ui: Ui
    ) -> tuple[LockedRuntime, tuple[tuple[Arch, LockedRuntime], ...]]:
        """Pin the runtime for the layer's target and a compiler for each build-host arch."""
        ...

    def install(
        self, runtime: LockedRuntime, files: Files, tree: Tree, *, reverse: bool = False
    ) -> list[Removal]:
        """Lay the runtime out as the tree's ``python/``; return what it left out on purpose."""
        ...

    def unpack_compiler(self, compiler: LockedRuntime, files: Files, destination: Path) -> Path:
        """Unpack a compiler's files into `destination`; return its interpreter."""
        ...


def provider(name: Provider) -> RuntimeProvider:
    """The provider a layer.toml or a lock names."""
    if name is Provider.DEBIAN:
        from pybuild.runtimes.debian import DebianProvider

        return DebianProvider()
    from pybuild.runtimes.pbs import PbsProvider

    return PbsProvider()
