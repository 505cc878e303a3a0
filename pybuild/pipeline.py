"""`pybuild build`: the stages in order. Each stage is its own module; this holds no logic.

prepare (lock, tools, fetch: the only network, compiler) -> assemble -> prune -> strip ->
verify -> bytecode -> sbom -> archive -> budgets -> report -> deployment files.

`build` takes a parsed lock and the fetched files, so it runs from fixture wheels without uv or
the network; `prepare` makes those from a layer.toml as the command line does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import CheckError
from pybuild.model.layerfile import Layer
from pybuild.model.lockfile import Lock, current_lock
from pybuild.model.requirements import load_requirements
from pybuild.model.tree import PYBUILD, Removal, Tree
from pybuild.runtimes import provider
from pybuild.runtimes.compiler import Compiler, host_arch, select_compiler
from pybuild.stages.archive import ArchiveResult, Compressor, sources_from_tree, write_zip
from pybuild.stages.assemble import WheelInput, assemble
from pybuild.stages.budgets import Limit, check_budgets
from pybuild.stages.bytecode import compile_tree, strip_owners
from pybuild.stages.deploy import DeployFiles, write_deploy_files
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.stages.prune import prune
from pybuild.stages.report import BuildReport, build_report, render_build_report, stage_size
from pybuild.stages.sbom import SBOM_PATH, sbom_json
from pybuild.stages.strip import strip_tree
from pybuild.stages.verify import TreeView, verify_layer, verify_target
from pybuild.support.cache import Cache
from pybuild.support.fsutil import WorkDir, atomic_write_text, reclaim_stale
from pybuild.support.index import Indexes
from pybuild.support.jsonout import dumps_stable
from pybuild.support.tools import Tools, check_tools
from pybuild.ui import Ui

OVER_LIMIT = "over-limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    """Everything one build needs, already parsed, fetched and chosen."""

    layer: Layer
    lock: Lock
    files: Mapping[str, Path]  # sha256 -> the fetched file
    out_dir: Path
    cache: Cache
    compiler: Compiler
    tools: Tools
    epoch: int
    strict: bool = False  # the layer's size goals fail the build
    reverse_order: bool = False  # create the tree's files in reverse order (`build --check`)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What `build` returns: the zip written, its report and report.json's path, the deployment
    files (None when the profile is not a Lambda image), and how many times an ELF file was
    parsed."""

    archive: ArchiveResult
    report: BuildReport
    report_path: Path
    deploy: DeployFiles | None
    elf_parses: int  # how often an ELF file was parsed (at most twice each: see the tests)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Where `prepare` may get inputs and which compiler it may use."""

    indexes: Indexes
    offline: bool = False
    seed_dir: Path | None = None
    runtime_url: str | None = None
    python: str | None = None  # --python: a compiler the lock does not pin
    pinned_compiler: str | None = None  # --pinned-compiler: the lock's, unpacked elsewhere
    emulate_compiler: bool = False
    sysroot: Path | None = None
    jobs: int = 4  # parallel downloads


def mirrors_of(layer: Layer, lock: Lock) -> dict[str, str]:
    """The Debian mirrors for a lock's Debian packages: layer.toml's, else Debian's own."""
    from pybuild.model.layerfile import DebianRuntime
    from pybuild.runtimes.debian_archive import DEFAULT_MIRRORS

    own = dict(layer.runtime.mirrors) if isinstance(layer.runtime, DebianRuntime) else {}
    return {**DEFAULT_MIRRORS, **own}


def prepare(
    layer: Layer, sources: Sources, cache: Cache, ui: Ui
) -> tuple[Lock, dict[str, Path], Compiler, Tools]:
    """The current lock, the byte-deciding tools (checked), every input fetched, the compiler."""
    lock = current_lock(layer, load_requirements(layer.requirements))
    tools = check_tools()
    mirrors = mirrors_of(layer, lock)
    needs_compiler = (
        sources.python is None and sources.pinned_compiler is None and not sources.emulate_compiler
    )
    artifacts = lock_artifacts(
        lock,
        host=host_arch() if needs_compiler else None,
        mirrors=mirrors,
        runtime_url=sources.runtime_url,
    )
    fetched = fetch_artifacts(
        artifacts,
        cache,
        indexes=sources.indexes,
        ui=ui,
        offline=sources.offline,
        seed_dir=sources.seed_dir,
        jobs=sources.jobs,
    )
    files = {f.artifact.want.sha256: f.path for f in fetched}
    compiler = select_compiler(
        lock,
        files,
        cache,
        ui,
        python=sources.python,
        pinned_compiler=sources.pinned_compiler,
        emulate=sources.emulate_compiler,
        sysroot=sources.sysroot,
    )
    return lock, files, compiler, tools


def assemble_tree(
    layer: Layer,
    lock: Lock,
    files: Mapping[str, Path],
    work: Path,
    ui: Ui,
    *,
    reverse: bool = False,
) -> tuple[Tree, list[Removal]]:
    """The runtime and the locked wheels laid out as Lambda's /opt in `work/opt`."""
    runtime_provider = provider(lock.runtime.provider)
    tree = Tree(work / "opt", runtime_provider.layout(lock.target))
    ui.info(f"assembling {lock.runtime.description} and {len(lock.wheels)} wheels")
    wheels = [WheelInput(w.name, files[w.sha256], w.filename) for w in lock.wheels]
    removed = assemble(
        runtime_provider,
        lock.runtime,
        files,
        tree,
        wheels=wheels,
        include=layer.include,
        work=work,
        reverse=reverse,
        project=layer.path.parent,
    )
    return tree, removed


def build(request: BuildRequest, ui: Ui) -> BuildResult:
    """Build the layer zip of `request` in a work directory under the cache: assemble, prune, strip,
    verify, compile the bytecode, add the SBOM, write the zip, check its limits, write
    ``<name>.report.json`` and ``.report.txt`` beside it, then the deployment files.

    Raises `CheckError` (exit 1) when verify finds problems (no zip is written) or the zip is over a
    limit that fails the build: that zip and its report are written as ``<name>.over-limit.*``, with
    no deployment files, and ``<name>.zip`` stays as it was.
    """
    layer, lock = request.layer, request.lock
    options = layer.options
    target = verify_target(lock.target.arch, lock.target.glibc, layer.profile)
    strip_docstrings = strip_owners(options.strip_docstrings, {w.name for w in lock.wheels})
    reclaim_stale(request.out_dir)
    work_parent = request.cache.root / "tmp"
    reclaim_stale(work_parent, prefix="build-")
    with WorkDir(work_parent, "build-") as work:
        tree, removed = assemble_tree(
            layer, lock, request.files, work, ui, reverse=request.reverse_order
        )
        stages = [stage_size(tree, "assemble")]

        ui.info("pruning")
        removed += prune(tree, layer.prune, {w.name for w in lock.wheels})
        stages.append(stage_size(tree, "prune"))

        ui.info("stripping ELF files")
        stripped = strip_tree(tree)
        stages.append(stage_size(tree, "strip"))

        ui.info(f"verifying against {target.describe()}")
        verified = verify_layer(TreeView(tree, options.symlinks), target, tree.layout.interpreter)
        if not verified.ok:
            bad = len({p.path for p in verified.problems})
            raise CheckError(
                f"verify failed: {len(verified.problems)} problems in {bad} files",
                [str(p) for p in verified.problems],
            )

        compiled = compile_tree(
            tree,
            options.bytecode,
            request.compiler,
            work=work,
            ui=ui,
            debug_ranges=options.debug_ranges,
            strip_docstrings=strip_docstrings,
        )
        stages.append(stage_size(tree, "bytecode"))

        settings = {
            "bytecode": options.bytecode.value,
            "bytecode_debug_ranges": options.debug_ranges,
            "bytecode_strip_docstrings": ", ".join(sorted(strip_docstrings)) or "none",
            "compression": f"libdeflate {request.tools.libdeflate} level "
            f"{options.compression_level}",
            "symlinks": options.symlinks.value,
            "source_date_epoch": request.epoch,
            "target": lock.target.describe(),
            "profile": layer.profile.name,
            "prune_defaults": layer.prune.defaults,
            "runtime": lock.runtime.description,
        }
        sbom = sbom_json(
            lock,
            compiler=request.compiler,
            tools=request.tools,
            options=settings,
            epoch=request.epoch,
        )
        tree.write(SBOM_PATH, sbom.encode(), PYBUILD)
        tree.check_disk()

        compressor = Compressor(
            options.compression_level,
            request.tools.compressor,
            request.cache.root / "deflate",
            ui,
        )
        limits: list[Limit] = []

        def named(result: ArchiveResult) -> Path:
            limits.extend(check_budgets(result, options.budgets, strict=request.strict))
            over = any(limit.failed for limit in limits)
            return request.out_dir / f"{layer.name}{'.' + OVER_LIMIT if over else ''}.zip"

        ui.info("writing the zip")
        archive = write_zip(
            sources_from_tree(tree),
            tree.root,
            request.out_dir / f"{layer.name}.zip",
            epoch=request.epoch,
            compressor=compressor,
            symlinks=options.symlinks,
            rename=named,
        )
        failed = [limit for limit in limits if limit.failed]
        base = archive.path.name.removesuffix(".zip")
        report = build_report(
            name=layer.name,
            archive=archive,
            deployable=not failed,
            limits=limits,
            stages=stages,
            owner_of={p: e.owner for p, e in tree.files()},
            removals=removed,
            strip=stripped,
            root=tree.root,
            verify=verified,
            bytecode=compiled,
            settings=settings,
            tools=request.tools.as_dict(),
        )
        elf_parses = tree.elf_parses

    report_path = request.out_dir / f"{base}.report.json"
    atomic_write_text(report_path, dumps_stable(report))
    atomic_write_text(request.out_dir / f"{base}.report.txt", render_build_report(report))
    for limit in limits:
        if limit.over and not limit.failed:
            ui.warn(f"{limit.describe()} (reported; `--strict` or [budgets] strict fails on it)")
    if failed:
        largest = ", ".join(f"{p.owner} {p.zipped_bytes:,}" for p in report.parts[:5])
        raise CheckError(
            f"over budget: {'; '.join(limit.describe() for limit in failed)}; wrote "
            f"{archive.path.name} and {report_path.name} (not deployable); largest zipped: "
            f"{largest}"
        )
    deploy = write_deploy_files(
        name=layer.name,
        zip_path=archive.path,
        sha256=archive.sha256,
        target=lock.target,
        profile=layer.profile,
        python=tree.layout.python.executable,
        ui=ui,
    )
    return BuildResult(archive, report, report_path, deploy, elf_parses)
