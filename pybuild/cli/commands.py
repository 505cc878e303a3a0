"""One function per command: call the stage that does the work, print what it found.

Nothing here builds, checks or decides: the stages and tools do (`pybuild.pipeline`,
`pybuild.stages.*`, `pybuild.tools.*`, `pybuild.smoke.*`). Imports are local so that
``pybuild verify MISSING`` answers before LIEF or rich are loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pybuild.errors import PybuildError
from pybuild.support.inputs import file_kind
from pybuild.ui import Ui

if TYPE_CHECKING:
    from pybuild.pipeline import Sources
    from pybuild.stages.verify import VerifyTarget


def _require_files(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            raise PybuildError(f"{path}: no such file")
        if not path.is_file():
            raise PybuildError(f"{path}: not a regular file ({file_kind(path.stat().st_mode)})")


def lock(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild lock`: resolve the layer's requirements for its target with uv and write lock.json
    (runtime, a bytecode compiler per build-host architecture, one wheel per distribution).

    With ``--check``, only compare lock.json with requirements.txt and layer.toml, without the
    network. Exit 0; a stale lock raises `CheckError` (exit 1), a missing or invalid one `LockError`
    (exit 2).
    """
    from pybuild.model.layerfile import load_layer
    from pybuild.model.lockfile import current_lock
    from pybuild.model.requirements import load_requirements
    from pybuild.stages.lock import create_lock
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.fsutil import atomic_write_text
    from pybuild.support.index import configured_indexes

    layer = load_layer(args.layer)
    pins = load_requirements(layer.requirements)
    if args.check:
        current_lock(layer, pins)
        ui.info(f"{layer.lock_path} is up to date")
        return 0
    created = create_lock(
        layer,
        pins,
        indexes=configured_indexes(args.index_url),
        cache=Cache(default_cache_dir()),
        ui=ui,
    )
    atomic_write_text(layer.lock_path, created.to_json())
    hosts = ", ".join(arch.value for arch, _ in created.compilers) or "none"
    ui.info(
        f"wrote {layer.lock_path}: {created.runtime.description}, {len(created.wheels)} wheels, "
        f"bytecode compilers pinned for {hosts} hosts"
    )
    return 0


def fetch(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild fetch`: put every input of lock.json into the cache (the runtime's files, the
    compiler pinned for this host, every wheel), verified by sha256, and print how many were
    downloaded, seeded from ``--from`` or already cached. lock.json is used as it is, not checked
    against requirements.txt. Exit 0; what cannot be fetched raises `FetchError` (exit 2)."""
    from pybuild.model.layerfile import load_layer
    from pybuild.model.lockfile import read_lock
    from pybuild.pipeline import mirrors_of
    from pybuild.runtimes.compiler import host_arch
    from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.index import configured_indexes

    layer = load_layer(args.layer)
    locked = read_lock(layer.lock_path)
    cache = Cache(default_cache_dir())
    artifacts = lock_artifacts(
        locked, host=host_arch(), mirrors=mirrors_of(layer, locked), runtime_url=args.runtime_url
    )
    results = fetch_artifacts(
        artifacts,
        cache,
        indexes=configured_indexes(args.index_url),
        ui=ui,
        offline=args.offline,
        seed_dir=args.from_dir,
        jobs=args.jobs,
    )
    counts = {
        how: sum(1 for r in results if r.how == how) for how in ("downloaded", "seeded", "cached")
    }
    summary = ", ".join(f"{n} {how}" for how, n in counts.items() if n)
    ui.info(f"{len(results)} artifacts in {cache.root}: {summary}")
    return 0


def _sources(args: argparse.Namespace) -> Sources:
    """Where `build` and `prune-plan` get their inputs and compiler (`add_sources`,
    `add_compiler`, `add_sysroot`)."""
    from pybuild.pipeline import Sources
    from pybuild.support.index import configured_indexes

    return Sources(
        indexes=configured_indexes(args.index_url),
        offline=args.offline,
        seed_dir=args.from_dir,
        runtime_url=args.runtime_url,
        python=args.python,
        pinned_compiler=args.pinned_compiler,
        emulate_compiler=args.emulate_compiler,
        sysroot=args.sysroot,
        jobs=args.jobs,
    )


def build(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild build`: build the layer zip from the current lock (fetching what the cache lacks)
    into ``--out`` with its report and deployment files; then ``--check`` builds it again in another
    process and environment and compares, and ``--smoke`` smoke-tests it.

    Exit 0, or with ``--smoke`` 1 if a smoke check fails. A stale lock, problems found by verify, a
    limit that fails the build and a ``--check`` difference raise `CheckError` (exit 1).
    """
    from pybuild.model.layerfile import load_layer
    from pybuild.pipeline import BuildRequest, build, prepare
    from pybuild.stages.archive import zip_epoch
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.fsutil import check_writable_directory

    layer = load_layer(args.layer)
    cache = Cache(default_cache_dir())
    check_writable_directory(args.out, "--out")
    check_writable_directory(cache.root, "the cache")
    sources = _sources(args)
    locked, files, compiler, tools = prepare(layer, sources, cache, ui)
    request = BuildRequest(
        layer=layer,
        lock=locked,
        files=files,
        out_dir=args.out,
        cache=cache,
        compiler=compiler,
        tools=tools,
        epoch=zip_epoch(os.environ.get("SOURCE_DATE_EPOCH")),
        strict=args.strict,
        reverse_order=args.creation_order == "reversed",
    )
    result = build(request, ui)
    archive = result.archive
    ui.info(f"{archive.path}: {archive.size:,} bytes, sha256 {archive.sha256}")
    ui.info(f"report: {result.report_path} (and .txt)")
    if result.deploy is not None:
        ui.info(
            f"deploy: {result.deploy.publish.name} (aws lambda publish-layer-version "
            f"--cli-input-json file://... --zip-file fileb://...), "
            f"{result.deploy.serverless.name}, {result.deploy.sam.name}"
        )
    if args.check:
        from pybuild.tools.repro import check_reproducible

        check_reproducible(layer, request, result, sources, ui)
    if args.smoke:
        return _smoke(archive.path, layer, args, ui)
    return 0


def prune_plan(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild prune-plan`: write the standard-library rule file generated from the layer's import
    graph (`pybuild.tools.prune_plan`), and ``--report`` if given; print the reads of ``__doc__`` by
    owner and a summary, and warn when ``[prune] rules`` does not name the file.

    With ``--check`` the rule file is not written (the ``--report`` file still is): a stale one
    raises `CheckError` (exit 1). Exit 0 otherwise.
    """
    from pybuild.model.layerfile import load_layer
    from pybuild.pipeline import prepare
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.fsutil import atomic_write_text, resolve_path
    from pybuild.support.jsonout import dumps_stable
    from pybuild.tools.prune_plan import check_plan, doc_readers, make_plan, plan_report

    layer = load_layer(args.layer)
    for trace in args.trace:
        _require_files(trace)
    cache = Cache(default_cache_dir())
    sources = _sources(args)
    locked, files, compiler, _ = prepare(layer, sources, cache, ui)
    plan = make_plan(
        layer,
        lock=locked,
        files=files,
        compiler=compiler,
        cache=cache,
        ui=ui,
        out=args.out,
        traces=args.trace,
    )
    if args.report is not None:
        atomic_write_text(args.report, dumps_stable(plan_report(plan)))
    readers = doc_readers(plan.graph)
    ui.info(
        "reads of __doc__ by owner: "
        + (", ".join(f"{owner} {len(reads)}" for owner, reads in readers.items()) or "none")
    )
    shown = os.path.normpath(plan.path)  # the path as written, without extends' "../.."
    kept = sum(1 for m in plan.graph.modules.values() if m.name in plan.kept)
    summary = (
        f"{len(plan.removed)} standard-library modules no import reaches "
        f"({kept} of {len(plan.graph.modules)} modules kept; {len(plan.traced)} only by a trace)"
    )
    if args.check:
        check_plan(plan)
        ui.info(f"{shown} is up to date: {summary}")
        return 0
    atomic_write_text(plan.path, plan.text)
    ui.info(f"wrote {shown}: {summary}")
    if resolve_path(plan.path) not in {resolve_path(p) for p in layer.prune.rules}:
        ui.warn(f"{layer.path} does not name it in [prune] rules: it removes nothing yet")
    return 0


def _smoke(zip_path: Path, layer: object, args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.layerfile import Layer
    from pybuild.smoke.runner import Trace, never_loaded, smoke_zip, spec_for_layer
    from pybuild.support.cache import default_cache_dir
    from pybuild.support.fsutil import atomic_write_text
    from pybuild.support.jsonout import dumps_stable

    assert isinstance(layer, Layer)  # noqa: S101
    cache_dir = default_cache_dir()
    spec = spec_for_layer(
        layer,
        cache_dir=cache_dir,
        ui=ui,
        sysroot=args.sysroot,
        trace=args.trace is not None,
        relocate=args.relocate,
    )
    ui.info(f"smoke test of {zip_path}")
    result = smoke_zip(zip_path, spec, cache_dir / "tmp")
    print(f"smoke: {result.how}")
    for check in result.checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}")
        if not check.ok and check.detail:
            for line in check.detail.splitlines():
                print(f"      {line}")
    if args.trace is not None:
        subtrees = never_loaded(zip_path, result.loaded)
        atomic_write_text(args.trace, dumps_stable(Trace(result.loaded, tuple(subtrees))))
        print(
            f"trace: {len(result.loaded)} files loaded; largest subtrees never loaded "
            f"(full list in {args.trace}):"
        )
        for subtree in subtrees[:15]:
            print(f"  {subtree.bytes:>12,}  {subtree.files:>5} files  {subtree.path}")
    failed = sum(1 for c in result.checks if not c.ok)
    if failed:
        print(f"smoke: {failed} of {len(result.checks)} checks failed")
        return 1
    print(f"smoke: all {len(result.checks)} checks passed")
    return 0


def smoke(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild smoke`: smoke-test a layer zip (`pybuild.smoke.runner`: its interpreter starts, the
    imports and ``[smoke]`` commands run) and print PASS or FAIL for each check; with ``--trace``,
    also write the files it loaded and list the largest subtrees never loaded. Exit 0 if every check
    passed, 1 if one failed; a missing zip raises (exit 2)."""
    from pybuild.model.layerfile import load_layer

    _require_files(args.zip)
    return _smoke(args.zip, load_layer(args.layer), args, ui)


def invoke(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild invoke`: `pybuild.invoke.command.run`. Exit 0 if every invocation succeeded (with
    ``--check``: every check passed), else 1."""
    from pybuild.invoke.command import run

    return run(args, ui)


def diff(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild diff`: print the entries added, removed and changed between zips A and B, with the
    kind of each change (printed even with ``--quiet``). Exit 0 if the zips are identical, 1 if they
    differ; a missing zip raises (exit 2)."""
    from pybuild.tools.diff import diff_zips

    _require_files(args.a, args.b)
    difference = diff_zips(args.a, args.b)
    if difference.identical:
        ui.info(f"{args.a} and {args.b} are identical")
        return 0
    print(
        f"{args.a} -> {args.b}: {len(difference.added)} added, {len(difference.removed)} "
        f"removed, {len(difference.changed)} changed"
    )
    for line in difference.lines():
        print(line)
    return 1


def report(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild report`: print the size table of any layer zip on stdout (even with ``--quiet``).
    Exit 0; a missing or unreadable zip raises (exit 2)."""
    from pybuild.stages.report import zip_table

    _require_files(args.zip)
    print(zip_table(args.zip), end="")
    return 0


def strip(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild strip`: strip the ELF files of the paths in place (directories recursively),
    printing what became of each and the bytes saved. Exit 0, also when files were left as they were
    (each is a warning); a path that does not exist raises (exit 2)."""
    missing = [str(p) for p in args.paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise PybuildError(f"no such file or directory: {', '.join(missing)}")
    from pybuild.stages.strip import strip_paths

    results = strip_paths(args.paths)
    for result in results:
        if result.status == "stripped":
            ui.info(
                f"stripped  {result.path}: {result.size_before:,} -> {result.size_after:,} "
                f"bytes (-{result.saved:,})"
            )
        elif result.status == "refused":
            ui.warn(f"left as it was: {result.path}: {result.reason}")
        else:
            ui.info(f"unchanged {result.path}: {result.reason}")
    before = sum(r.size_before for r in results)
    after = sum(r.size_after for r in results)
    stripped = sum(1 for r in results if r.status == "stripped")
    ui.info(
        f"{len(results)} ELF files, {stripped} stripped: {before:,} -> {after:,} bytes "
        f"(saved {before - after:,})"
    )
    return 0


def verify(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild verify`: check every ELF file of a layer zip or directory against the target
    (``--layer``'s, or ``--arch`` with ``--glibc``) and print each problem; ``--json`` also writes
    the report. Exit 0 if every file fits, 1 if there are problems; a missing path, or ``--arch``
    without ``--glibc`` or the reverse, raises (exit 2)."""
    if not args.path.exists():
        raise PybuildError(f"{args.path}: no such file or directory")
    if bool(args.arch) != bool(args.glibc):
        raise PybuildError("--arch and --glibc go together (or use --layer)")
    from pybuild.stages.verify import verify_path

    target, interpreter = _verify_target(args)
    result = verify_path(args.path, target, interpreter)
    if args.json:
        from pybuild.support.fsutil import atomic_write_text
        from pybuild.support.jsonout import dumps_stable

        atomic_write_text(args.json, dumps_stable(result.summary()))
    if result.ok:
        ui.info(f"{args.path}: {len(result.elf_files)} ELF files fit {target.describe()}")
        return 0
    bad_files = len({p.path for p in result.problems})
    print(
        f"{args.path}: {len(result.problems)} problems in {bad_files} of "
        f"{len(result.elf_files)} ELF files for {target.describe()}:"
    )
    for problem in result.problems:
        print(f"  {problem}")
    return 1


def _verify_target(args: argparse.Namespace) -> tuple[VerifyTarget, str | None]:
    """The target (and where its interpreter is) from --arch/--glibc/--profile or the layer."""
    from pybuild.elf.policy import profile_for
    from pybuild.model.target import Arch
    from pybuild.model.versions import GlibcVersion
    from pybuild.stages.verify import verify_target

    if args.arch:
        try:
            glibc = GlibcVersion.parse(args.glibc)
        except ValueError as err:
            raise PybuildError(f"--glibc: {err}") from None
        return verify_target(Arch(args.arch), glibc, profile_for(glibc, args.profile)), None
    from pybuild.model.layerfile import load_layer
    from pybuild.runtimes import provider

    layer = load_layer(args.layer)
    profile = profile_for(layer.target.glibc, args.profile) if args.profile else layer.profile
    layout = provider(layer.runtime.provider).layout(layer.target)
    return verify_target(layer.target.arch, layer.target.glibc, profile), layout.interpreter


def doctor(args: argparse.Namespace, ui: Ui) -> int:
    """`pybuild doctor`: check that this machine can lock, build and smoke-test the layer, one line
    per check: PASS, FAIL, or "note" for an optional check that failed. Exit 0 if no required check
    failed, else 1."""
    from pybuild.model.layerfile import load_layer
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.tools.doctor import diagnose, problems

    findings = diagnose(
        load_layer(args.layer),
        Cache(default_cache_dir()),
        python=args.python,
        index_url=args.index_url,
    )
    for finding in findings:
        status = "PASS" if finding.ok else "note" if finding.optional else "FAIL"
        print(f"{status}  {finding.name}: {finding.detail}")
    failed = problems(findings)
    if failed:
        print(f"doctor: {len(failed)} of {len(findings)} checks failed")
        return 1
    print("doctor: ready to lock, build and smoke-test")
    return 0
