"""Option groups shared by several commands, each defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from pybuild.model.layerfile import DEFAULT_LAYER_PATH


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def add_layer(parser: argparse.ArgumentParser) -> None:
    """``--layer PATH``: the layer.toml a command works on (default ``layer/layer.toml``)."""
    parser.add_argument(
        "--layer",
        type=Path,
        default=DEFAULT_LAYER_PATH,
        metavar="PATH",
        help="the layer definition (default: %(default)s); paths inside it are relative to it",
    )
    add_quiet(parser)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: only errors are printed."""
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def add_index(parser: argparse.ArgumentParser) -> None:
    """``--index-url``: the package index, instead of the pip/uv configuration."""
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="package index to use instead of the pip/uv configuration",
    )


def add_sources(parser: argparse.ArgumentParser) -> None:
    """Where the inputs of a lock may come from (fetch and build)."""
    add_index(parser)
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use only the cache and --from; no network at all (fail listing what is missing)",
    )
    parser.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="seed the cache from the files in DIR (recursively), matched by sha256",
    )
    parser.add_argument(
        "--runtime-url",
        metavar="URL",
        help="download the runtime from URL (a mirror or file://) instead of the lock's; the "
        "lock's sha256 still decides",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=4,
        metavar="N",
        help="parallel downloads (default: %(default)s)",
    )


def add_compiler(parser: argparse.ArgumentParser) -> None:
    """How the bytecode compiler is chosen (build): ``--pinned-compiler``, ``--python`` and
    ``--emulate-compiler``, at most one of them."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--pinned-compiler",
        metavar="PATH",
        help="the lock's pinned compiler for this build host, unpacked by other means (e.g. a "
        "copy whose ELF interpreter Nix patched): it must run as exactly the pinned CPython "
        "version, and the build is then the same pinned build, zip and SBOM",
    )
    choice.add_argument(
        "--python",
        metavar="PATH",
        help="compile bytecode with this CPython (the runtime's minor version) instead of the "
        "lock's pinned compiler: the zip then depends on its exact version, and the report and "
        "SBOM say 'compiler not pinned'",
    )
    choice.add_argument(
        "--emulate-compiler",
        action="store_true",
        help="compile bytecode with the target runtime itself under qemu even where a compiler "
        "for this host is pinned (slower; the same bytes)",
    )


def add_sysroot(parser: argparse.ArgumentParser) -> None:
    """``--sysroot DIR``: the root file system qemu runs a foreign interpreter in."""
    parser.add_argument(
        "--sysroot",
        type=Path,
        metavar="DIR",
        help="the target's root file system for qemu (default on x86_64 hosts: a Debian 12 "
        "arm64 sysroot, built once and cached)",
    )


def add_smoke(parser: argparse.ArgumentParser) -> None:
    """The smoke test's options shared by ``smoke`` and ``build --smoke``: the trace and
    relocation."""
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
