"""The tools whose code decides bytes of a layer, checked before a build and recorded in it.

installer (RECORD, console scripts), lief (what strip and verify see) and deflate, with the
libdeflate it bundles (every compressed byte): each must be the version pybuild pins (its own
installed metadata says which), and deflate must be the bundled build (`data/tools.toml`: no
shared libdeflate, and the golden input compresses to the recorded bytes at every level). A
mismatch is refused before any work is done, naming the tool: another version could write
another zip.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from pybuild import __version__
from pybuild.errors import PybuildError

BYTE_DECIDING = ("deflate", "installer", "lief")
GOLDEN = b"".join(i.to_bytes(4, "little") * (i % 7 + 1) for i in range(4096)) + (
    b"pybuild golden input\n" * 512
)


class ToolError(PybuildError):
    """A tool that decides bytes of the layer is not the one pybuild pins."""


@dataclass(frozen=True, slots=True)
class Tools:
    """What wrote the layer, for the report and the SBOM."""

    pybuild: str
    installer: str
    lief: str
    deflate: str
    libdeflate: str

    def as_dict(self) -> dict[str, str]:
        """Each tool's version by its name."""
        return {
            "deflate": self.deflate,
            "installer": self.installer,
            "libdeflate": self.libdeflate,
            "lief": self.lief,
            "pybuild": self.pybuild,
        }

    @property
    def compressor(self) -> str:
        """The compressor's identity: part of every compression cache key."""
        return f"libdeflate-{self.libdeflate}-deflate-{self.deflate}"


@cache
def _data() -> dict[str, object]:
    text = importlib.resources.files("pybuild").joinpath("data/tools.toml").read_text("utf-8")
    return tomllib.loads(text)


def _pins() -> dict[str, str]:
    """The exact versions pybuild's installed metadata requires (``name==version``)."""
    pins = {}
    for text in importlib.metadata.requires("pybuild") or ():
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None:
            continue
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[requirement.name] = specs[0].version
    return pins


def _shared_libdeflate() -> str | None:
    """The shared libdeflate deflate's extension module links, if it links one."""
    import deflate._deflate as module

    from pybuild.elf.reader import read_elf
    from pybuild.elf.types import ElfError

    try:
        elf = read_elf(Path(str(module.__file__)))
    except ElfError:
        return None
    return next((n for n in elf.needed if n.startswith("libdeflate")), None)


@cache
def check_tools() -> Tools:
    """The byte-deciding tools, checked against pybuild's pins; raise `ToolError` otherwise."""
    import deflate

    pins = _pins()
    installed = {name: importlib.metadata.version(name) for name in BYTE_DECIDING}
    wrong = [
        f"{name} {installed[name]} (pybuild pins {pins[name]})"
        for name in BYTE_DECIDING
        if name in pins and pins[name] != installed[name]
    ]
    if wrong:
        raise ToolError(
            f"{', '.join(wrong)} installed: these decide bytes of the layer; install pybuild "
            "with its pinned dependencies"
        )
    shared = _shared_libdeflate()
    if shared is not None:
        raise ToolError(
            f"deflate {installed['deflate']} is built against a shared libdeflate ({shared}), "
            "not the one it bundles: its bytes are not pinned; install deflate's wheel or sdist"
        )
    data = _data()["deflate"]
    assert isinstance(data, dict)  # noqa: S101 - our own data file
    golden = data["golden_sha256"]
    for level in range(1, 13):
        digest = hashlib.sha256(bytes(deflate.deflate_compress(GOLDEN, level))).hexdigest()
        if digest != golden[str(level)]:
            raise ToolError(
                f"deflate {installed['deflate']} compresses pybuild's golden input at level "
                f"{level} to other bytes than libdeflate {data['libdeflate']} does: not the "
                "bundled libdeflate"
            )
    return Tools(
        pybuild=__version__,
        installer=installed["installer"],
        lief=installed["lief"],
        deflate=installed["deflate"],
        libdeflate=str(data["libdeflate"]),
    )
