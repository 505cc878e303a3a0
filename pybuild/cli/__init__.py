"""The `pybuild` command line: a parser per subcommand, one place turning errors into exit codes.

Exit codes: 0 success, 1 a check ran and found problems, 2 pybuild could not do its job, 130
interrupted. A user's mistake or a failure of the system (a full disk, a read-only directory) is
one line on stderr (``error: ...``), never a traceback; several problems come as a one-line
summary followed by one problem per line. A closed output pipe (``pybuild diff | head``) ends
quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pybuild import __version__
from pybuild.cli import commands
from pybuild.cli.options import (
    add_compiler,
    add_index,
    add_layer,
    add_quiet,
    add_smoke,
    add_sources,
    add_sysroot,
)
from pybuild.errors import PybuildError
from pybuild.ui import Ui

Command = Callable[[argparse.Namespace, Ui], int]
if TYPE_CHECKING:  # the class is generic only in typeshed
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # as a process killed by SIGPIPE


def _parser_lock(sub: Subcommands) -> None:
    p = sub.add_parser(
        "lock",
        help="pin the runtime, the bytecode compilers and one wheel per distribution in lock.json",
        description="Pin the layer's runtime (its provider's files) and a bytecode compiler for "
        "each build-host architecture, resolve requirements.txt for the target with uv, pick "
        "one wheel per distribution and write lock.json beside layer.toml.",
    )
    add_layer(p)
    add_index(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="only check that lock.json matches requirements.txt and layer.toml "
        "(exit 1 if stale); no network",
    )
    p.set_defaults(handler=commands.lock)


def _parser_fetch(sub: Subcommands) -> None:
    p = sub.add_parser(
        "fetch",
        help="download every input of the lock into the cache, verified by sha256",
        description="Put the runtime's files, the compiler pinned for this host and every wheel "
        "of lock.json into the content-addressed cache ($PYBUILD_CACHE_DIR, default "
        "$XDG_CACHE_HOME/pybuild).",
    )
    add_layer(p)
    add_sources(p)
    p.set_defaults(handler=commands.fetch)


def _parser_build(sub: Subcommands) -> None:
    p = sub.add_parser(
        "build",
        help="build the layer zip from the lock (fetching what the cache lacks)",
        description="Assemble the runtime and the locked wheels as Lambda's /opt, prune, strip, "
        "verify, compile bytecode with the pinned compiler and write <out>/<name>.zip, "
        "byte-for-byte the same on any machine, with <name>.report.json and .txt and the "
        "deployment files beside it. A zip over a limit that fails the build is written as "
        "<name>.over-limit.zip, with its report.",
    )
    add_layer(p)
    add_sources(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("dist"),
        metavar="DIR",
        help="where the zip and its report go (default: %(default)s)",
    )
    add_compiler(p)
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail the build when the zip is over the layer's own [budgets] goals, not only "
        "over Lambda's limits",
    )
    p.add_argument(
        "--creation-order",
        choices=["sorted", "reversed"],
        default="sorted",
        help="the order the tree's files are created in (`--check` builds a second time "
        "with 'reversed'; the zip must not change)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="build a second time in another process with a fresh cache (so a freshly unpacked "
        "compiler and an empty compression cache), another directory, umask, time zone and "
        "locale, reversed creation order and SOURCE_DATE_EPOCH set or unset; fail unless both "
        "zips are identical",
    )
    p.add_argument(
        "--smoke", action="store_true", help="run `pybuild smoke` on the zip after building it"
    )
    add_sysroot(p)
    add_smoke(p)
    p.set_defaults(handler=commands.build)


def _parser_prune_plan(sub: Subcommands) -> None:
    p = sub.add_parser(
        "prune-plan",
        help="generate the standard-library prune rules from the layer's import graph",
        description="Assemble the layer, prune it by every rule except the generated file, read "
        "the imports of every module with the pinned compiler and write, as a rule file for "
        "[prune] rules, every standard-library module that nothing reaches from site-packages, "
        "native code, the interpreter's start-up, [prune] keep or a smoke trace. Prints who "
        "reads __doc__ (the evidence for [bytecode] strip_docstrings).",
    )
    add_layer(p)
    add_sources(p)
    add_compiler(p)
    add_sysroot(p)
    p.add_argument(
        "--trace",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a `pybuild smoke --trace` file: what it loaded is kept too (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="the rule file to write (default: the one of [prune] rules this command wrote, "
        "else prune-stdlib.toml beside layer.toml)",
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also write the evidence as JSON: why each module is kept, dynamic imports, "
        "reads of __doc__, unresolved imports",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write no rule file (only --report's evidence, if asked for); exit 1 if the rule "
        "file is not what this command would write",
    )
    p.set_defaults(handler=commands.prune_plan)


def _parser_smoke(sub: Subcommands) -> None:
    p = sub.add_parser(
        "smoke",
        help="run the layer's interpreter from /opt (under qemu if needed) and check it",
        description="Unpack the zip, show it at /opt as Lambda does (private mount namespace as "
        "root, else relocated), and check with Lambda's environment: the interpreter "
        "starts, every top-level module imports, the layer's [smoke] commands run, "
        "and nothing is compiled from source at run time. Exit 1 if a check fails.",
    )
    p.add_argument("zip", type=Path, metavar="ZIP")
    add_layer(p)
    add_sysroot(p)
    add_smoke(p)
    p.set_defaults(handler=commands.smoke)


def _parser_invoke(sub: Subcommands) -> None:
    from pybuild.invoke.command import configure

    p = sub.add_parser(
        "invoke",
        help="invoke a Node.js function with the layer at /opt, as Lambda does, without Docker",
        description="Run the function's handler in a local Lambda execution environment: a "
        "Runtime API server, aws-lambda-ric (or pybuild's own runtime loop), the layer at /opt "
        "and its Python under qemu where needed. Prints the function's output and Lambda's "
        "REPORT lines for a cold and warm invocations; --check runs the testing checklist "
        "against a fake provider. Exit 1 if an invocation or a check fails.",
    )
    configure(p)
    p.set_defaults(handler=commands.invoke)


def _parser_diff(sub: Subcommands) -> None:
    p = sub.add_parser(
        "diff",
        help="list what differs between two layer zips",
        description="Entries added, removed and changed between two layer zips, with the kind "
        "of change (ELF sections, pyc header or code, text lines, zip metadata). "
        "Exit 0 if identical, 1 if they differ.",
    )
    p.add_argument("a", type=Path, metavar="A.zip")
    p.add_argument("b", type=Path, metavar="B.zip")
    add_quiet(p)
    p.set_defaults(handler=commands.diff)


def _parser_report(sub: Subcommands) -> None:
    p = sub.add_parser(
        "report",
        help="print the size table of any layer zip",
        description="Sizes per distribution and runtime part, unpacked and zipped, and the "
        "largest files, of a layer zip (built by pybuild or not), largest zipped first.",
    )
    p.add_argument("zip", type=Path, metavar="ZIP")
    add_quiet(p)
    p.set_defaults(handler=commands.report)


def _parser_strip(sub: Subcommands) -> None:
    p = sub.add_parser(
        "strip",
        help="strip ELF files in place, never touching a loadable byte",
        description="Remove symbol tables, debug info and every other non-allocated section "
        "from ELF files (directories recursively), keeping each file's loadable "
        "bytes identical. Files that cannot be handled safely are left as they were "
        "and reported.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_quiet(p)
    p.set_defaults(handler=commands.strip)


def _parser_verify(sub: Subcommands) -> None:
    p = sub.add_parser(
        "verify",
        help="check every ELF file of a layer (zip or directory) against the target",
        description="Report, all at once, every ELF file that would not run on the target: "
        "wrong architecture, symbol versions above the target's manylinux policy, "
        "libraries the target's dynamic loader would not find (in the layer where it "
        "looks, or on the system), RPATHs leaving the layer, unreadable files; and a "
        "layer without an interpreter. Exit 1 if there is any.",
    )
    p.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="a layer zip or directory (its root is what Lambda mounts at /opt)",
    )
    add_layer(p)
    p.add_argument(
        "--arch",
        choices=["aarch64", "x86_64"],
        help="target architecture (with --glibc, instead of --layer)",
    )
    p.add_argument("--glibc", metavar="2.N", help="target glibc ceiling, e.g. 2.34")
    p.add_argument(
        "--profile", metavar="NAME", help="system profile (default: the one for the glibc version)"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    p.set_defaults(handler=commands.verify)


def _parser_doctor(sub: Subcommands) -> None:
    p = sub.add_parser(
        "doctor",
        help="check that this machine can lock, build and smoke-test the layer",
        description="One line per check (bytecode compiler, qemu and sysroot, Nix, cache "
        "directory, package index, runtime), with what to do about a failure. "
        "Exit 1 if a required check fails.",
    )
    add_layer(p)
    add_index(p)
    p.add_argument("--python", metavar="PATH", help="a CPython you would pass to build --python")
    p.set_defaults(handler=commands.doctor)


def build_parser() -> argparse.ArgumentParser:
    """The `pybuild` argument parser: one subcommand per command, each with its handler (a function
    of `pybuild.cli.commands`) as the `handler` default."""
    parser = argparse.ArgumentParser(
        prog="pybuild",
        description="Build bit-reproducible AWS Lambda layers (python-build-standalone + pinned "
        "wheels) for arm64 and x86_64.",
    )
    parser.add_argument("--version", action="version", version=f"pybuild {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _parser_lock,
        _parser_fetch,
        _parser_build,
        _parser_prune_plan,
        _parser_smoke,
        _parser_invoke,
        _parser_diff,
        _parser_report,
        _parser_strip,
        _parser_verify,
        _parser_doctor,
    ):
        add(sub)
    return parser


def _os_error(err: OSError) -> str:
    """An OS error as one line naming the path and the reason."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [p for p in (err.filename, err.filename2) if p is not None]
    return f"{': '.join(os.fsdecode(p) for p in paths)}: {reason}" if paths else reason


def _interrupted() -> None:
    from pybuild.support.fsutil import discard_open
    from pybuild.support.net import CANCELLED

    CANCELLED.set()
    discard_open()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of `argv` (default: ``sys.argv[1:]``) and return the exit code: the
    handler's own (0 or 1), a `PybuildError`'s `exit_code` (printed as ``error: ...`` with its
    details), 2 for any other `OSError`, 141 when the output pipe closed, 130 on Ctrl-C.

    argparse exits by itself (`SystemExit`): 2 on a usage error, 0 after ``--help`` or
    ``--version``.
    """
    args = build_parser().parse_args(argv)
    ui = Ui(quiet=args.quiet)
    handler: Command = args.handler
    try:
        return handler(args, ui)
    except PybuildError as err:
        ui.error(err)
        return err.exit_code
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, and let Python's own flush at exit
        # find a harmless descriptor.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except OSError as err:
        ui.error(PybuildError(_os_error(err)))
        return 2
    except KeyboardInterrupt:
        _interrupted()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
