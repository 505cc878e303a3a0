"""The `pybuild` command line: a parser per subcommand, one place turning errors into exit codes.

Exit codes: 0 success, 1 a check ran and found problems, 2 pybuild could not do its job. A user's
mistake is one line on stderr (``error: ...``), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pybuild import __version__
from pybuild.errors import CheckError, PybuildError
from pybuild.model.layerfile import DEFAULT_LAYER_PATH
from pybuild.ui import Ui

Command = Callable[[argparse.Namespace, Ui], int]
if TYPE_CHECKING:  # the class is generic only in typeshed
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layer",
        type=Path,
        default=DEFAULT_LAYER_PATH,
        metavar="PATH",
        help="the layer definition (default: %(default)s); paths inside it are relative to it",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def _add_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="package index to use instead of the pip/uv configuration",
    )


def _cmd_lock(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.layerfile import load_layer
    from pybuild.model.lockfile import read_lock
    from pybuild.model.requirements import load_requirements
    from pybuild.stages.lock import create_lock, stale_reasons
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.fsutil import atomic_write_text
    from pybuild.support.index import configured_indexes

    layer = load_layer(args.layer)
    pins = load_requirements(layer.requirements)
    if args.check:
        reasons = stale_reasons(layer, pins, read_lock(layer.lock_path))
        if reasons:
            raise CheckError(
                f"{layer.lock_path} is stale: {'; '.join(reasons)}; run `pybuild lock`"
            )
        ui.info(f"{layer.lock_path} is up to date")
        return 0
    lock = create_lock(
        layer,
        pins,
        indexes=configured_indexes(args.index_url),
        cache=Cache(default_cache_dir()),
        ui=ui,
    )
    atomic_write_text(layer.lock_path, lock.to_json())
    ui.info(
        f"wrote {layer.lock_path}: runtime {lock.runtime.filename} and "
        f"{len(lock.wheels)} wheels for {lock.target.arch.value}"
    )
    return 0


def _cmd_fetch(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.layerfile import load_layer
    from pybuild.model.lockfile import read_lock
    from pybuild.stages.fetch import fetch
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.index import configured_indexes

    layer = load_layer(args.layer)
    lock = read_lock(layer.lock_path)
    cache = Cache(default_cache_dir())
    results = fetch(
        lock,
        cache,
        indexes=configured_indexes(args.index_url),
        ui=ui,
        offline=args.offline,
        seed_dir=args.from_dir,
        runtime_url=args.runtime_url,
        jobs=args.jobs,
    )
    counts = {
        how: sum(1 for r in results if r.how == how) for how in ("downloaded", "seeded", "cached")
    }
    summary = ", ".join(f"{n} {how}" for how, n in counts.items() if n)
    ui.info(f"{len(results)} artifacts in {cache.root}: {summary}")
    return 0


def _cmd_strip(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.stages.strip import strip_paths

    missing = [str(p) for p in args.paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise PybuildError(f"no such file or directory: {', '.join(missing)}")
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


def _cmd_verify(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.target import Arch, parse_version2
    from pybuild.stages.verify import verify_path, verify_target

    if args.arch or args.glibc:
        if not (args.arch and args.glibc):
            raise PybuildError("--arch and --glibc go together (or use --layer)")
        try:
            glibc = parse_version2(args.glibc, major=2)
        except ValueError as err:
            raise PybuildError(f"--glibc: {err}") from None
        target = verify_target(Arch(args.arch), glibc, args.profile)
    else:
        from pybuild.model.layerfile import load_layer

        layer = load_layer(args.layer)
        target = verify_target(layer.target.arch, layer.target.glibc, args.profile or layer.profile)
    if not args.path.exists():
        raise PybuildError(f"{args.path}: no such file or directory")
    report = verify_path(args.path, target)
    if args.json:
        from pybuild.model.lockfile import dumps_stable
        from pybuild.support.fsutil import atomic_write_text

        atomic_write_text(
            args.json,
            dumps_stable(
                {
                    "elf_files": list(report.elf_files),
                    "ok": report.ok,
                    "problems": [
                        {"expected": p.expected, "found": p.found, "path": p.path, "what": p.what}
                        for p in report.problems
                    ],
                    "target": {
                        "arch": target.arch.value,
                        "glibc": f"{target.glibc[0]}.{target.glibc[1]}",
                        "policy": target.policy.name,
                        "profile": target.profile.name,
                    },
                }
            ),
        )
    if report.ok:
        ui.info(f"{args.path}: {len(report.elf_files)} ELF files fit {target.describe()}")
        return 0
    bad_files = len({p.path for p in report.problems})
    print(
        f"{args.path}: {len(report.problems)} problems in {bad_files} of "
        f"{len(report.elf_files)} ELF files for {target.describe()}:"
    )
    for problem in report.problems:
        print(f"  {problem}")
    return 1


def _cmd_build(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.layerfile import load_layer
    from pybuild.pipeline import BuildRequest, build, source_date_epoch
    from pybuild.support.cache import Cache, default_cache_dir
    from pybuild.support.index import configured_indexes

    layer = load_layer(args.layer)
    request = BuildRequest(
        layer=layer,
        out_dir=args.out,
        cache=Cache(default_cache_dir()),
        indexes=configured_indexes(args.index_url),
        offline=args.offline,
        seed_dir=args.from_dir,
        runtime_url=args.runtime_url,
        python=args.python,
        source_date_epoch=source_date_epoch(),
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
        from pybuild.pipeline import check_reproducible

        check_reproducible(request, result, ui)
    if args.smoke:
        return run_smoke(archive.path, smoke_spec(args, layer, ui), args, ui)
    return 0


def _require_files(*paths: Path) -> None:
    for path in paths:
        if not path.is_file():
            raise PybuildError(f"{path}: no such file")


def _cmd_diff(args: argparse.Namespace, ui: Ui) -> int:
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


def _cmd_report(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.stages.report import zip_table

    _require_files(args.zip)
    print(zip_table(args.zip), end="")
    return 0


def smoke_spec(args: argparse.Namespace, layer: Any, ui: Ui) -> Any:
    """The smoke test settings from layer.toml and the command line (sysroot built if needed)."""
    import platform

    from pybuild.smoke.runner import SmokeSpec, command_label

    sysroot = args.sysroot
    if sysroot is None and platform.machine() != layer.target.arch.value:
        if layer.target.arch.value != "aarch64":
            raise PybuildError(
                f"no default sysroot for {layer.target.arch.value}; pass --sysroot DIR"
            )
        from pybuild.runtimes.debian import build_sysroot
        from pybuild.support.cache import default_cache_dir

        sysroot = build_sysroot(default_cache_dir(), ui)
    return SmokeSpec(
        arch=layer.target.arch,
        python=f"python{layer.target.python_str}",
        commands=tuple((command_label(code), code) for code in layer.smoke.commands)
        + tuple((script.name, script.read_text("utf-8")) for script in layer.smoke.scripts),
        env=dict(layer.smoke.env),
        skip_imports=dict(layer.smoke.skip_imports),
        timeout=layer.smoke.timeout,
        sysroot=sysroot,
        trace=args.trace is not None,
        at_opt=False if args.relocate else None,
    )


def run_smoke(zip_path: Path, spec: Any, args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.smoke.runner import never_loaded, smoke_zip

    ui.info(f"smoke test of {zip_path}")
    result = smoke_zip(zip_path, spec)
    print(f"smoke: {result.how}")
    for check in result.checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}")
        if not check.ok and check.detail:
            for line in check.detail.splitlines():
                print(f"      {line}")
    if args.trace is not None:
        from pybuild.model.lockfile import dumps_stable
        from pybuild.support.fsutil import atomic_write_text

        subtrees = never_loaded(zip_path, result.loaded)
        atomic_write_text(
            args.trace,
            dumps_stable(
                {
                    "loaded": list(result.loaded),
                    "never_loaded": [
                        {"path": t.path, "files": t.files, "bytes": t.bytes} for t in subtrees
                    ],
                }
            ),
        )
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


def _cmd_smoke(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.model.layerfile import load_layer

    _require_files(args.zip)
    layer = load_layer(args.layer)
    return run_smoke(args.zip, smoke_spec(args, layer, ui), args, ui)


def _add_smoke_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sysroot",
        type=Path,
        metavar="DIR",
        help="the target's root file system for qemu (default on x86_64 hosts: "
        "a Debian 12 arm64 sysroot, built once and cached)",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="record the files the checks load, and the largest subtrees nothing loaded, as JSON",
    )
    parser.add_argument(
        "--relocate",
        action="store_true",
        help="run the layer where it is unpacked instead of at /opt",
    )


def _cmd_doctor(args: argparse.Namespace, ui: Ui) -> int:
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _parser_lock(commands: Subcommands) -> None:
    lock = commands.add_parser(
        "lock",
        help="resolve requirements.txt for the target and write layer/lock.json",
        description="Resolve the pinned requirements for the layer's target with uv, pick one "
        "wheel per distribution and write lock.json beside layer.toml.",
    )
    _add_common(lock)
    _add_index(lock)
    lock.add_argument(
        "--check",
        action="store_true",
        help="only check that lock.json matches requirements.txt and layer.toml "
        "(exit 1 if stale); no network",
    )
    lock.set_defaults(handler=_cmd_lock)


def _parser_fetch(commands: Subcommands) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download every artifact of the lock into the cache, verified by sha256",
        description="Put the runtime and every wheel of lock.json into the content-addressed "
        "cache ($PYBUILD_CACHE_DIR, default $XDG_CACHE_HOME/pybuild).",
    )
    _add_common(fetch)
    _add_index(fetch)
    fetch.add_argument(
        "--offline",
        action="store_true",
        help="use only the cache (and --from); fail listing what is missing",
    )
    fetch.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="seed the cache from the files in DIR, matched by sha256",
    )
    fetch.add_argument(
        "--runtime-url",
        metavar="URL",
        help="download the runtime from URL (a mirror or file://) instead; the "
        "lock's sha256 still decides",
    )
    fetch.add_argument(
        "--jobs",
        type=_positive_int,
        default=4,
        metavar="N",
        help="parallel downloads (default: %(default)s)",
    )
    fetch.set_defaults(handler=_cmd_fetch)


def _parser_build(commands: Subcommands) -> None:
    build = commands.add_parser(
        "build",
        help="build the layer zip from the lock (fetching what the cache lacks)",
        description="Assemble the runtime and the locked wheels as Lambda's /opt, prune, strip, "
        "verify, compile bytecode and write <out>/<name>.zip, byte-for-byte the "
        "same on any machine, with <name>.report.json and .txt beside it.",
    )
    _add_common(build)
    _add_index(build)
    build.add_argument(
        "--out",
        type=Path,
        default=Path("dist"),
        metavar="DIR",
        help="where the zip and its report go (default: %(default)s)",
    )
    build.add_argument(
        "--offline", action="store_true", help="use only the cache (and --from); no network at all"
    )
    build.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="seed the cache from the files in DIR, matched by sha256",
    )
    build.add_argument(
        "--runtime-url",
        metavar="URL",
        help="take the runtime from URL (a mirror or file://); the lock's sha256 still decides",
    )
    build.add_argument(
        "--python",
        metavar="PATH",
        help="the CPython (the runtime's minor version) that compiles bytecode",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="build a second time in another process under perturbed conditions "
        "(directory, umask, TZ, locale, file order, SOURCE_DATE_EPOCH) and "
        "fail unless both zips are identical",
    )
    build.add_argument(
        "--smoke", action="store_true", help="run `pybuild smoke` on the zip after building it"
    )
    _add_smoke_options(build)
    build.set_defaults(handler=_cmd_build)


def _parser_smoke(commands: Subcommands) -> None:
    smoke = commands.add_parser(
        "smoke",
        help="run the layer's interpreter from /opt (under qemu if needed) and check it",
        description="Unpack the zip, show it at /opt as Lambda does (private mount namespace as "
        "root, else relocated), and check with Lambda's environment: the interpreter "
        "starts, every top-level module imports, the layer's [smoke] commands run, "
        "and nothing is compiled from source at run time. Exit 1 if a check fails.",
    )
    smoke.add_argument("zip", type=Path, metavar="ZIP")
    _add_common(smoke)
    _add_smoke_options(smoke)
    smoke.set_defaults(handler=_cmd_smoke)


def _parser_diff(commands: Subcommands) -> None:
    diff = commands.add_parser(
        "diff",
        help="list what differs between two layer zips",
        description="Entries added, removed and changed between two layer zips, with the kind "
        "of change (ELF sections, pyc header or code, text lines, zip metadata). "
        "Exit 0 if identical, 1 if they differ.",
    )
    diff.add_argument("a", type=Path, metavar="A.zip")
    diff.add_argument("b", type=Path, metavar="B.zip")
    diff.add_argument("-q", "--quiet", action="store_true", help="print only differences")
    diff.set_defaults(handler=_cmd_diff)


def _parser_report(commands: Subcommands) -> None:
    report = commands.add_parser(
        "report",
        help="print the size table of any layer zip",
        description="Sizes per distribution and runtime part, unpacked and zipped, of a layer "
        "zip (built by pybuild or not).",
    )
    report.add_argument("zip", type=Path, metavar="ZIP")
    report.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    report.set_defaults(handler=_cmd_report)


def _parser_strip(commands: Subcommands) -> None:
    strip = commands.add_parser(
        "strip",
        help="strip ELF files in place, never touching a loadable byte",
        description="Remove symbol tables, debug info and every other non-allocated section "
        "from ELF files (directories recursively), keeping each file's loadable "
        "bytes identical. Files that cannot be handled safely are left as they were "
        "and reported.",
    )
    strip.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    strip.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    strip.set_defaults(handler=_cmd_strip)


def _parser_verify(commands: Subcommands) -> None:
    verify = commands.add_parser(
        "verify",
        help="check every ELF file of a layer (zip or directory) against the target",
        description="Report, all at once, every ELF file that would not run on the target: "
        "wrong architecture, symbol versions above the target's manylinux policy, "
        "libraries neither in the layer nor on the system, RPATHs leaving the "
        "layer, unreadable files. Exit 1 if there is any.",
    )
    verify.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="a layer zip or directory (its root is what Lambda mounts at /opt)",
    )
    _add_common(verify)
    verify.add_argument(
        "--arch",
        choices=["aarch64", "x86_64"],
        help="target architecture (with --glibc, instead of --layer)",
    )
    verify.add_argument("--glibc", metavar="2.N", help="target glibc ceiling, e.g. 2.34")
    verify.add_argument(
        "--profile", metavar="NAME", help="system profile (default: the one for the glibc version)"
    )
    verify.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    verify.set_defaults(handler=_cmd_verify)


def _parser_doctor(commands: Subcommands) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check that this machine can lock, build and smoke-test the layer",
        description="One line per check (bytecode compiler, qemu and sysroot, Nix, cache "
        "directory, package index, runtime), with what to do about a failure. "
        "Exit 1 if a required check fails.",
    )
    _add_common(doctor)
    _add_index(doctor)
    doctor.add_argument("--python", metavar="PATH", help="the CPython that would compile bytecode")
    doctor.set_defaults(handler=_cmd_doctor)


def _cmd_invoke(args: argparse.Namespace, ui: Ui) -> int:
    from pybuild.invoke.command import run

    return run(args, ui)


def _parser_invoke(commands: Subcommands) -> None:
    from pybuild.invoke.command import configure

    invoke = commands.add_parser(
        "invoke",
        help="invoke a Node.js function with the layer at /opt, as Lambda does, without Docker",
        description="Run the function's handler in a local Lambda execution environment: a "
        "Runtime API server, aws-lambda-ric (or pybuild's own runtime loop), the layer at /opt "
        "and its Python under qemu where needed. Prints the function's output and Lambda's "
        "REPORT lines for a cold and warm invocations; --check runs the testing checklist "
        "against a fake provider. Exit 1 if an invocation or a check fails.",
    )
    configure(invoke)
    invoke.set_defaults(handler=_cmd_invoke)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pybuild",
        description="Build bit-reproducible AWS Lambda layers (python-build-standalone + pinned "
        "wheels) for arm64 and x86_64.",
    )
    parser.add_argument("--version", action="version", version=f"pybuild {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _parser_lock(commands)
    _parser_fetch(commands)
    _parser_build(commands)
    _parser_smoke(commands)
    _parser_invoke(commands)
    _parser_diff(commands)
    _parser_report(commands)
    _parser_strip(commands)
    _parser_verify(commands)
    _parser_doctor(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ui = Ui(quiet=args.quiet)
    handler: Command = args.handler
    try:
        return handler(args, ui)
    except PybuildError as err:
        ui.console.print(
            f"error: {err}",
            markup=False,
            soft_wrap=True,
            style="red" if err.exit_code == 2 else None,
        )
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
