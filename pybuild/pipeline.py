"""`pybuild build`: the stages in order. Each stage is its own module; this holds no logic.

fetch (the only network) -> assemble -> prune -> strip -> verify -> bytecode -> manifest ->
archive + budgets -> report.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild import __version__
from pybuild.errors import CheckError, LockError
from pybuild.model.layerfile import Layer
from pybuild.model.lockfile import dumps_stable, read_lock
from pybuild.model.requirements import load_requirements
from pybuild.stages.archive import EPOCH_1980, ArchiveResult, write_zip, zip_epoch
from pybuild.stages.assemble import Tree, WheelInput, assemble
from pybuild.stages.budgets import check_budgets
from pybuild.stages.bytecode import compile_tree, find_compiler
from pybuild.stages.deploy import DeployFiles, write_deploy_files
from pybuild.stages.fetch import fetch
from pybuild.stages.lock import stale_reasons
from pybuild.stages.prune import prune
from pybuild.stages.report import StageSize, build_report, render_build_report
from pybuild.stages.sbom import SBOM_PATH, sbom_json
from pybuild.stages.strip import strip_paths
from pybuild.stages.verify import verify_target, verify_tree
from pybuild.support.cache import Cache
from pybuild.support.fsutil import atomic_write_text
from pybuild.support.index import Indexes
from pybuild.ui import Ui


@dataclass(frozen=True, slots=True)
class BuildRequest:
    layer: Layer
    out_dir: Path
    cache: Cache
    indexes: Indexes
    offline: bool = False
    seed_dir: Path | None = None
    runtime_url: str | None = None
    python: str | None = None  # the bytecode compiler; default: a host CPython of the minor
    source_date_epoch: str | None = None
    work_dir: Path | None = None  # where the tree is assembled (default: the system temp dir)


@dataclass(frozen=True, slots=True)
class BuildResult:
    archive: ArchiveResult
    report: dict[str, Any]
    report_path: Path
    deploy: DeployFiles | None = None


def _size(tree: Tree, stage: str) -> StageSize:
    files = [tree.root / p for p in tree.files()]
    return StageSize(stage, len(files), sum(p.lstat().st_size for p in files))


def build(request: BuildRequest, ui: Ui) -> BuildResult:
    layer = request.layer
    lock = read_lock(layer.lock_path)
    stale = stale_reasons(layer, load_requirements(layer.requirements), lock)
    if stale:
        raise LockError(f"{layer.lock_path} is stale: {'; '.join(stale)}; run `pybuild lock`")
    target = verify_target(lock.target.arch, lock.target.glibc, layer.profile)
    compiler = find_compiler(lock.target.python, request.python)
    epoch = zip_epoch(request.source_date_epoch)
    options = layer.options

    fetched = {
        f.artifact.want.sha256: f.path
        for f in fetch(
            lock,
            request.cache,
            indexes=request.indexes,
            ui=ui,
            offline=request.offline,
            seed_dir=request.seed_dir,
            runtime_url=request.runtime_url,
        )
    }

    with tempfile.TemporaryDirectory(prefix="pybuild-build-", dir=request.work_dir) as work:
        tree = Tree(root=Path(work).resolve() / "opt", python=f"python{lock.target.python_str}")
        tree.root.mkdir()
        ui.info(f"assembling {lock.runtime.filename} and {len(lock.wheels)} wheels")
        wheels = [WheelInput(w.name, fetched[w.sha256], w.filename) for w in lock.wheels]
        removed = assemble(fetched[lock.runtime.sha256], wheels, tree, layer.include)
        stages = [_size(tree, "assemble")]

        ui.info("pruning")
        removed += prune(tree, layer.prune, {w.name for w in lock.wheels})
        stages.append(_size(tree, "prune"))

        ui.info("stripping ELF files")
        stripped = strip_paths([tree.root])
        stages.append(_size(tree, "strip"))

        ui.info(f"verifying against {target.describe()}")
        verified = verify_tree(tree.root, target)
        if not verified.ok:
            listing = "; ".join(str(p) for p in verified.problems)
            raise CheckError(f"verify failed: {len(verified.problems)} problems: {listing}")

        ui.info(f"compiling bytecode ({options.bytecode}) with CPython {compiler.version}")
        compiled = compile_tree(tree, options.bytecode, compiler, debug_ranges=options.debug_ranges)
        stages.append(_size(tree, "bytecode"))

        settings = {
            "pybuild": __version__,
            "bytecode": options.bytecode,
            "bytecode_debug_ranges": options.debug_ranges,
            "bytecode_compiler": compiler.version,
            "compression": f"libdeflate level {options.compression_level} (deflate "
            f"{importlib.metadata.version('deflate')})",
            "symlinks": options.symlinks,
            "source_date_epoch": epoch,
            "target": f"{lock.target.arch.value} glibc {lock.target.glibc_str}",
            "profile": target.profile.name,
            "prune_defaults": layer.prune.defaults,
        }
        atomic_write_text(tree.root / SBOM_PATH, sbom_json(lock, options=settings, epoch=epoch))
        tree.owners[SBOM_PATH] = "pybuild"

        out = request.out_dir / f"{layer.name}.zip"
        ui.info(f"writing {out}")
        archive = write_zip(
            tree.root,
            out,
            epoch=epoch,
            level=options.compression_level,
            symlinks=options.symlinks,
            cache_dir=request.cache.root / "deflate",
            before_publish=lambda result: check_budgets(result, options, tree.owners),
        )
        report = build_report(
            name=layer.name,
            archive=archive,
            options=options,
            stages=stages,
            owner_of=tree.owners,
            removals=removed,
            strip=stripped,
            root=tree.root,
            verify=verified,
            bytecode=compiled,
            settings=settings,
        )

    report_path = request.out_dir / f"{layer.name}.report.json"
    atomic_write_text(report_path, dumps_stable(report))
    atomic_write_text(request.out_dir / f"{layer.name}.report.txt", render_build_report(report))
    deploy = write_deploy_files(
        name=layer.name,
        zip_path=archive.path,
        sha256=archive.sha256,
        target=lock.target,
        profile=target.profile,
        python=f"python{lock.target.python_str}",
        ui=ui,
    )
    return BuildResult(archive, report, report_path, deploy)


def source_date_epoch() -> str | None:
    return os.environ.get("SOURCE_DATE_EPOCH")


# The conditions the second build of `--check` runs under: another time zone, locale, umask,
# build directory, file creation order, and SOURCE_DATE_EPOCH set to the default instead of unset
# (or unset instead of set).
PERTURBED_ENV = {
    "TZ": "Pacific/Chatham",
    "LANG": "tr_TR.UTF-8",
    "LC_ALL": "tr_TR.UTF-8",
    "PYBUILD_REVERSE_ORDER": "1",
}
PERTURBED_UMASK = 0o027


def check_reproducible(request: BuildRequest, first: BuildResult, ui: Ui) -> None:
    """Build again under perturbed conditions in a separate process; compare the zips."""
    import subprocess
    import sys

    from pybuild.tools.diff import diff_zips

    layer = request.layer
    with tempfile.TemporaryDirectory(prefix="pybuild-check-") as tmp:
        out = Path(tmp) / "second build" / "out"
        env = {**os.environ, **PERTURBED_ENV, "PYBUILD_CACHE_DIR": str(request.cache.root)}
        if request.source_date_epoch is None:
            env["SOURCE_DATE_EPOCH"] = str(EPOCH_1980)  # the default, set: must change nothing
        elif zip_epoch(request.source_date_epoch) == EPOCH_1980:
            env.pop("SOURCE_DATE_EPOCH")  # the default, unset
        command = [
            sys.executable,
            "-m",
            "pybuild",
            "build",
            "--quiet",
            "--offline",
            "--layer",
            str(layer.path.resolve()),
            "--out",
            str(out),
        ]
        if request.python:
            command += ["--python", request.python]
        if request.runtime_url:
            command += ["--runtime-url", request.runtime_url]
        ui.info(
            "--check: building again (other directory, umask, time zone, locale, file "
            "order, SOURCE_DATE_EPOCH)"
        )
        completed = subprocess.run(
            command,
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: os.umask(PERTURBED_UMASK),
        )
        if completed.returncode != 0:
            raise CheckError(
                f"--check: the second build failed: {completed.stderr.strip().splitlines()[-1:]}"
            )
        second = out / first.archive.path.name
        difference = diff_zips(first.archive.path, second)
        if not difference.identical:
            raise CheckError(
                "--check: the two builds differ: " + "; ".join(difference.lines(limit=5))
            )
    ui.info(f"--check: both builds are {first.archive.sha256}")
