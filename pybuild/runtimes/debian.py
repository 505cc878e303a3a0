"""Debian's python3.X packages as a layer's runtime: a Debian system, not a Lambda image.

For machines that cannot reach GitHub (where python-build-standalone lives) and for pybuild's own
tests: the interpreter and standard library of Debian's ``python3.X-minimal``,
``libpython3.X-minimal`` and ``libpython3.X-stdlib`` for the target's architecture, pinned by
sha256 in the lock like every other input. The layout takes two directories from them and edits
no file: ``usr/bin/python3.X`` becomes ``python/bin/python3.X`` and ``usr/lib/python3.X`` becomes
``python/lib/python3.X`` (the interpreter finds its standard library from its own path, as on
Debian). Debian's ``site`` module looks for packages in ``<prefix>/lib/python3/dist-packages``,
so that is where the wheels go. Nothing else of the packages is laid out (documentation, man
pages, ``/etc``); Debian's ``sitecustomize.py``, a link to apport's hook in ``/etc``, is left out.

The interpreter needs Debian 12's libraries (glibc 2.36 among them): a layer built this way runs
where those are, which the `debian12` system profile describes and `pybuild smoke` provides with
its Debian sysroot. It does not run on AWS Lambda's images.

The compilers are the same packages for each build host's architecture (amd64 and arm64, the same
Debian version), unpacked whole.
"""

from __future__ import annotations

from pathlib import Path

from pybuild.errors import LockError
from pybuild.model.layerfile import DebianRuntime, Layer, Provider
from pybuild.model.lockfile import LockedRuntime
from pybuild.model.target import Arch, Target
from pybuild.model.tree import RUNTIME, Layout, Removal, Tree
from pybuild.model.versions import PythonVersion
from pybuild.runtimes import Files
from pybuild.runtimes.debian_archive import DEBIAN_ARCH, DebianArchive, upstream_version
from pybuild.support.cache import Cache
from pybuild.support.extract import TreeWriter, UnsafeArchiveError, extract_deb
from pybuild.ui import Ui

SITE_PACKAGES = "python/lib/python3/dist-packages"
LEFT_OUT_SITECUSTOMIZE = "Debian's sitecustomize.py: a link to apport's hook in /etc"


def package_names(python: PythonVersion) -> list[str]:
    """The Debian packages that make up CPython `python`: ``python3.X-minimal``,
    ``libpython3.X-minimal`` and ``libpython3.X-stdlib``."""
    return [
        f"{python.executable}-minimal",
        f"lib{python.executable}-minimal",
        f"lib{python.executable}-stdlib",
    ]


class DebianProvider:
    """Debian's python3.X packages."""

    def layout(self, target: Target) -> Layout:
        """Wheels go into ``python/lib/python3/dist-packages``, where Debian's ``site`` looks."""
        return Layout(target.python, SITE_PACKAGES)

    def lock(
        self, layer: Layer, cache: Cache, ui: Ui
    ) -> tuple[LockedRuntime, tuple[tuple[Arch, LockedRuntime], ...]]:
        """Pin the suite's newest packages for both architectures: the target's are the runtime,
        each architecture's the compiler for build hosts of that architecture.

        LockError if one architecture's packages are not of one version, the two architectures'
        versions differ (the archive is mid-update), or the version is not the target's CPython.
        """
        spec = layer.runtime
        assert isinstance(spec, DebianRuntime)  # noqa: S101 - the provider of this spec
        archive = DebianArchive(spec.suite, cache, ui, dict(spec.mirrors), keyring=spec.keyring)
        names = package_names(layer.target.python)
        pinned = {}
        for arch in Arch:
            packages = archive.newest(names, arch)
            found = {p.version for p in packages}
            if len(found) != 1:
                raise LockError(
                    f"Debian {spec.suite} {DEBIAN_ARCH[arch]}: {', '.join(names)} are not of one "
                    f"version ({', '.join(sorted(found))}): the archive is mid-update; retry"
                )
            pinned[arch] = packages
        versions = {arch: packages[0].version for arch, packages in pinned.items()}
        if len(set(versions.values())) != 1:
            shown = ", ".join(f"{DEBIAN_ARCH[a]} {v}" for a, v in versions.items())
            raise LockError(
                f"Debian {spec.suite}: {names[0]} differs between architectures ({shown}); the "
                "compilers must be the runtime's exact version: retry when the mirrors agree"
            )
        version = versions[layer.target.arch]
        python_version = upstream_version(version)
        if not layer.target.python.matches(python_version):
            raise LockError(
                f"Debian {spec.suite}'s {names[0]} is {python_version}, not a CPython "
                f"{layer.target.python}"
            )

        def locked(arch: Arch) -> LockedRuntime:
            return LockedRuntime(
                provider=Provider.DEBIAN,
                python_version=python_version,
                description=f"Debian {spec.suite} {names[0]} {version} {DEBIAN_ARCH[arch]}",
                files=tuple(p.locked() for p in pinned[arch]),
            )

        runtime = locked(layer.target.arch)
        compilers = tuple(
            (arch, runtime if arch is layer.target.arch else locked(arch)) for arch in Arch
        )
        return runtime, compilers

    def install(
        self, runtime: LockedRuntime, files: Files, tree: Tree, *, reverse: bool = False
    ) -> list[Removal]:
        """Lay out the packages' ``usr/bin/python3.X`` and ``usr/lib/python3.X`` as ``python/bin``
        and ``python/lib``, leaving out Debian's sitecustomize.py (the removal returned).
        `reverse` unpacks the packages, and each package's files, in reverse order."""
        python = tree.layout.python.executable
        sitecustomize = f"usr/lib/{python}/sitecustomize.py"

        def layout(name: str) -> str | None:
            if name == f"usr/bin/{python}":
                return f"python/bin/{python}"
            if name == sitecustomize:
                return None
            if name == f"usr/lib/{python}" or name.startswith(f"usr/lib/{python}/"):
                return "python/" + name.removeprefix("usr/")
            return None

        for file in sorted(runtime.files, key=lambda f: f.filename, reverse=reverse):
            writer = TreeWriter(tree.root, f"Debian package {file.filename}")
            for written in extract_deb(files[file.sha256], writer, select=layout, reverse=reverse):
                tree.record(written, RUNTIME)
        if tree.layout.interpreter not in tree.entries:
            raise UnsafeArchiveError(f"{runtime.description}: no usr/bin/{python} in the packages")
        return [Removal(f"python/lib/{python}/sitecustomize.py", 0, LEFT_OUT_SITECUSTOMIZE)]

    def unpack_compiler(self, compiler: LockedRuntime, files: Files, destination: Path) -> Path:
        """Unpack the compiler's packages whole into `destination` (absolute links resolved inside
        it); its ``usr/bin/python3.X``."""
        for file in sorted(compiler.files, key=lambda f: f.filename):
            writer = TreeWriter(
                destination, f"Debian package {file.filename}", absolute_links="root"
            )
            extract_deb(files[file.sha256], writer)
        minor = ".".join(compiler.python_version.split(".")[:2])
        return destination / "usr" / "bin" / f"python{minor}"
