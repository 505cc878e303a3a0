"""`pybuild invoke`'s options and what it prints; the work is in the other modules.

Kept light at import: `pybuild.cli` imports `configure` to build its parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pybuild.ui import Ui

DEFAULT_RUNTIME = "nodejs24.x"


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 900:
        raise argparse.ArgumentTypeError(f"{text}: Lambda allows more than 0, up to 900 seconds")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add `pybuild invoke`'s arguments to its subcommand parser."""
    from pybuild.cli.options import positive_int

    parser.add_argument("zip", type=Path, metavar="ZIP", help="the layer zip, shown at /opt")
    parser.add_argument(
        "--function",
        type=Path,
        required=True,
        metavar="PATH",
        help="the function's code: a directory (LAMBDA_TASK_ROOT), or its handler file",
    )
    parser.add_argument(
        "--handler",
        dest="handler_name",  # `handler` is the subcommand's function in pybuild.cli
        metavar="FILE.EXPORT",
        help="as Lambda's Handler setting (default: handler.handler, or <file>.handler when "
        "--function is a file)",
    )
    parser.add_argument("--event", type=Path, metavar="FILE", help="the event, JSON (default: {})")
    parser.add_argument(
        "-n",
        "--invocations",
        type=positive_int,
        default=2,
        metavar="N",
        help="how many times to invoke: the first is cold, the others warm (default: %(default)s)",
    )
    parser.add_argument(
        "--env",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a function environment variable (repeatable)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=1024,
        metavar="MB",
        help="the function's memory size, for its environment and the REPORT line "
        "(default: %(default)s; not enforced)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="per invocation, enforced as Lambda does: the deadline header, then the runtime "
        "is killed (default: %(default)s)",
    )
    parser.add_argument(
        "--init-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the init phase's limit, past which Lambda runs the init again inside the first "
        "invocation (default: Lambda's 10; under qemu the --timeout, as emulation is several "
        "times slower than Lambda's own CPUs)",
    )
    parser.add_argument(
        "--runtime",
        default=DEFAULT_RUNTIME,
        metavar="ID",
        help="the Lambda runtime to present (AWS_EXECUTION_ENV; default: %(default)s); the "
        "Node.js that runs is the host's",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "ric", "loop"],
        default="auto",
        help="the runtime client: aws-lambda-ric (installed with npm into the cache if "
        "missing), pybuild's own loop, or auto: the first that works (default: %(default)s)",
    )
    parser.add_argument(
        "--ric", type=Path, metavar="DIR", help="an installed aws-lambda-ric package directory"
    )
    parser.add_argument(
        "--sysroot",
        type=Path,
        metavar="DIR",
        help="the target's root file system for qemu (default on x86_64 hosts: a Debian 12 "
        "arm64 sysroot, built once and cached)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="run the testing checklist instead of --event: a chat request cold, N-1 warm and "
        "a failing one, against a fake OpenAI provider on loopback; exit 1 if a check fails",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="hide the function's output")


def _task_root_and_handler(args: argparse.Namespace) -> tuple[Path, str]:
    from pybuild.errors import PybuildError
    from pybuild.support.fsutil import resolve_path

    function: Path = resolve_path(args.function)
    if function.is_file():
        return function.parent, args.handler_name or f"{function.stem}.handler"
    if function.is_dir():
        return function, args.handler_name or "handler.handler"
    raise PybuildError(f"{args.function}: no such file or directory")


def _event(args: argparse.Namespace) -> bytes:
    import json

    from pybuild.errors import PybuildError

    if args.event is None or args.check:
        return b"{}"
    if not args.event.is_file():
        raise PybuildError(f"{args.event}: no such file")
    event: bytes = args.event.read_bytes()
    try:
        json.loads(event)
    except ValueError as err:
        raise PybuildError(f"{args.event}: not JSON ({err})") from None
    return event


def run(args: argparse.Namespace, ui: Ui) -> int:
    """Run `pybuild invoke`: invoke the function with the layer N times, or run the checklist; print
    a summary and each result (or each check). The exit status: 0 if every invocation succeeded
    (with ``--check``: every check passed), else 1.

    Where the layer's interpreter is not of this host's architecture it runs under qemu: with
    ``--sysroot``, or for an aarch64 layer the cached Debian arm64 sysroot (built first if
    missing). A layer of the host's own architecture runs natively, ``--sysroot`` or not.
    """
    from pybuild.errors import PybuildError
    from pybuild.invoke import checklist
    from pybuild.invoke.clients import choose_client
    from pybuild.invoke.environment import LAMBDA_INIT_LIMIT, FunctionConfig
    from pybuild.invoke.run import function_session, needs_emulation, zip_interpreter_arch
    from pybuild.model.target import Arch
    from pybuild.stages.deploy import FUNCTION_ENVIRONMENT
    from pybuild.support.cache import default_cache_dir

    if not args.zip.is_file():
        raise PybuildError(f"{args.zip}: no such file")
    task_root, handler = _task_root_and_handler(args)
    event = _event(args)
    arch = zip_interpreter_arch(args.zip)
    sysroot = args.sysroot if needs_emulation(arch) else None
    if sysroot is None and needs_emulation(arch):
        if arch is not Arch.AARCH64:
            raise PybuildError(f"no default sysroot for {arch.value}; pass --sysroot DIR")
        from pybuild.smoke.sysroot import build_sysroot

        sysroot = build_sysroot(default_cache_dir(), ui)
    client = choose_client(args.client, handler, args.ric, default_cache_dir(), ui)
    init_timeout = args.init_timeout
    if init_timeout is None:
        init_timeout = LAMBDA_INIT_LIMIT if sysroot is None else args.timeout
        if sysroot is not None:
            ui.info(
                f"invoke: under qemu, the init phase may take up to --timeout "
                f"({args.timeout:g} s) instead of Lambda's {LAMBDA_INIT_LIMIT:g} s"
            )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    with checklist.fake_provider() as provider:
        env = dict(FUNCTION_ENVIRONMENT)
        if args.check:
            env.update(checklist.provider_environment(provider))
        env.update(dict(args.env))
        config = FunctionConfig(
            task_root=task_root,
            handler=handler,
            runtime=args.runtime,
            memory_mb=args.memory,
            timeout=args.timeout,
            init_timeout=init_timeout,
            env=env,
        )
        with function_session(config, client, args.zip, sysroot=sysroot, log=log) as session:
            function, how = session
            ui.info(f"invoke: {how}")
            if args.check:
                results, checks = checklist.run_checklist(function, provider, args.invocations - 1)
            else:
                results = [function.invoke(event) for _ in range(args.invocations)]
    for line in checklist.summary(results):
        print(line)
    if args.check:
        return 1 if checklist.print_checks(checks) else 0
    for number, result in enumerate(results, 1):
        print(f"{number}: {result.body.decode('utf-8', 'replace')[:2000]}")
    return 0 if all(r.ok for r in results) else 1
