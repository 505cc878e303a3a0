"""Test builders: wheels from small dicts, a package index served on loopback, layer definitions.

Nothing binary is committed for these tests; every wheel and archive is made in tmp_path.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import html
import io
import json
import os
import platform
import struct
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from pybuild.model.layerfile import Layer, Provider
from pybuild.model.lockfile import (
    Lock,
    LockedFile,
    LockedRuntime,
    LockedWheel,
    input_digests,
)
from pybuild.model.requirements import load_requirements
from pybuild.runtimes.compiler import Compiler
from pybuild.support.cache import file_sha256
from pybuild.support.inputs import MAX_INPUT_BYTES


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    *,
    requires: list[str] | None = None,
    files: dict[str, bytes] | None = None,
) -> Path:
    """Build a valid wheel (METADATA, WHEEL, RECORD with hashes) and return its path."""
    dist = canonicalize_name(name).replace("-", "_")
    filename = f"{dist}-{version}-{tag}.whl"
    dist_info = f"{dist}-{version}.dist-info"
    contents: dict[str, bytes] = dict(files or {f"{dist}/__init__.py": b"VALUE = 1\n"})
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires or []]
    contents[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    py_tag, abi_tag, plat_tag = tag.split("-")
    purelib = "true" if plat_tag == "any" else "false"
    wheel_lines = ["Wheel-Version: 1.0", "Generator: pybuild-tests", f"Root-Is-Purelib: {purelib}"]
    wheel_lines += [
        f"Tag: {py}-{abi}-{plat}"
        for py in py_tag.split(".")
        for abi in abi_tag.split(".")
        for plat in plat_tag.split(".")
    ]
    contents[f"{dist_info}/WHEEL"] = ("\n".join(wheel_lines) + "\n").encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in contents.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def make_sdist(directory: Path, name: str, version: str) -> Path:
    dist = canonicalize_name(name).replace("-", "_")
    path = directory / f"{dist}-{version}.tar.gz"
    directory.mkdir(parents=True, exist_ok=True)
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(f"{dist}-{version}/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    return path


@contextlib.contextmanager
def _tar_gz(path: Path) -> Iterator[tarfile.TarFile]:
    """A .tar.gz whose bytes depend only on its members (gzip's header holds no time)."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as archive,
    ):
        yield archive


def make_runtime_archive(
    directory: Path,
    name: str = "cpython-3.11.15+20990101-aarch64-unknown-linux-gnu-install_only.tar.gz",
    payload: bytes = b"#!/bin/false\n",
) -> Path:
    """A small tarball in PBS layout (python/bin/python3.11) standing in for a runtime archive."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with _tar_gz(path) as archive:
        info = tarfile.TarInfo("python/bin/python3.11")
        info.size = len(payload)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(payload))
    return path


FIXTURES = Path(__file__).parent / "fixtures" / "elf"
HOST_STDLIB = Path(tarfile.__file__).parent


def make_fake_runtime(
    directory: Path,
    name: str = "cpython-3.11.15+20990101-aarch64-unknown-linux-gnu-install_only.tar.gz",
    extra: dict[str, bytes] | None = None,
    links: dict[str, str] | None = None,
) -> Path:
    """A small runtime archive in PBS layout with real aarch64 ELF files from the fixtures.

    The interpreter is a tiny aarch64 executable (it runs under qemu, but is no Python); the
    stdlib holds the host's importlib (for the magic number) plus a few modules, test suites,
    bundled pip, headers, a static library and a shared libpython nothing links.
    """
    elf = (FIXTURES / "hello-aarch64").read_bytes()
    lib = (FIXTURES / "good-aarch64.so").read_bytes()
    bootstrap = (HOST_STDLIB / "importlib" / "_bootstrap_external.py").read_bytes()
    files: dict[str, bytes] = {
        "python/bin/python3.11": elf,
        "python/lib/libpython3.11.so.1.0": lib,
        "python/lib/python3.11/os.py": b"import sys\nSEP = '/'\n",
        "python/lib/python3.11/json/__init__.py": b"def dumps(x):\n    return repr(x)\n",
        "python/lib/python3.11/importlib/_bootstrap_external.py": bootstrap,
        "python/lib/python3.11/lib-dynload/_json.cpython-311-aarch64-linux-gnu.so": lib,
        "python/lib/python3.11/test/test_os.py": b"def test():\n    pass\n",
        "python/lib/python3.11/unittest/test/test_case.py": b"X = 1\n",
        "python/lib/python3.11/idlelib/idle.py": b"X = 1\n",
        "python/lib/python3.11/tkinter/__init__.py": b"X = 1\n",
        "python/lib/python3.11/ensurepip/__init__.py": b"X = 1\n",
        "python/lib/python3.11/config-3.11-aarch64-linux-gnu/libpython3.11.a": b"!<arch>\n",
        "python/lib/python3.11/site-packages/pip/__init__.py": b"X = 1\n",
        "python/lib/python3.11/site-packages/pip-24.0.dist-info/METADATA": b"Name: pip\n",
        "python/bin/pip3": b"#!/bin/sh\n",
        "python/include/python3.11/Python.h": b"/* header */\n",
        "python/share/man/man1/python3.1": b".TH\n",
        "python/lib/pkgconfig/python3.pc": b"prefix=/install\n",
        **(extra or {}),
    }
    symlinks = {
        "python/bin/python3": "python3.11",
        "python/bin/python": "python3.11",
        "python/lib/libpython3.11.so": "libpython3.11.so.1.0",
        **(links or {}),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with _tar_gz(path) as archive:
        for member, data in sorted(files.items()):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = (
                0o755 if data[:4] == b"\x7fELF" or member.startswith("python/bin/") else 0o644
            )
            archive.addfile(info, io.BytesIO(data))
        for member, target in sorted(symlinks.items()):
            info = tarfile.TarInfo(member)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


@dataclass
class IndexServer:
    """A PEP 503/691 index on loopback whose file responses can be made to fail on purpose.

    `faults[filename]` is a list consumed one per request: "500" (server error), "truncate"
    (half the body, then the connection closes), "corrupt" (right length, wrong bytes), "drop"
    (close without answering). Every request path is logged in `requests`.
    """

    root: Path
    json_pages: bool = False
    hashes_in_pages: bool = True
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    projects: dict[str, list[Path]] = field(default_factory=dict)
    raw_json_pages: dict[str, bytes] = field(default_factory=dict)  # served as they are
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def file_url(self, filename: str) -> str:
        return f"http://127.0.0.1:{self.port}/files/{filename}"

    def add(self, *paths: Path) -> None:
        for path in paths:
            project = canonicalize_name(path.name.split("-")[0])
            self.projects.setdefault(project, []).append(path)

    def page(self, project: str, as_json: bool) -> bytes | None:
        if as_json and project in self.raw_json_pages:
            return self.raw_json_pages[project]
        files = self.projects.get(project)
        if files is None:
            return None
        if as_json:
            entries = [
                {
                    "filename": p.name,
                    "url": f"../../files/{p.name}",
                    "hashes": {"sha256": sha256_of(p)} if self.hashes_in_pages else {},
                    "size": p.stat().st_size,
                }
                for p in files
            ]
            return json.dumps(
                {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
            ).encode()
        links = []
        for p in files:
            fragment = f"#sha256={sha256_of(p)}" if self.hashes_in_pages else ""
            links.append(
                f'<a href="../../files/{html.escape(p.name)}{fragment}">'
                f"{html.escape(p.name)}</a><br/>"
            )
        return ("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>").encode()

    def find(self, filename: str) -> Path | None:
        for files in self.projects.values():
            for p in files:
                if p.name == filename:
                    return p
        return None


def _handler(server_state: IndexServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(
            self,
            code: int,
            body: bytes,
            content_type: str,
            head: bool = False,
            length: int | None = None,
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            server_state.requests.append(self.path)
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                as_json = server_state.json_pages and "json" in self.headers.get("Accept", "")
                body = server_state.page(canonicalize_name(parts[1]), as_json)
                if body is None:
                    self._send(404, b"not found", "text/plain", head)
                    return
                kind = "application/vnd.pypi.simple.v1+json" if as_json else "text/html"
                self._send(200, body, kind, head)
                return
            if len(parts) == 2 and parts[0] == "files":
                path = server_state.find(parts[1])
                if path is None:
                    self._send(404, b"not found", "text/plain", head)
                    return
                data = path.read_bytes()
                pending = server_state.faults.get(parts[1])
                fault = pending.pop(0) if pending and not head else None
                if fault == "500":
                    self._send(500, b"boom", "text/plain")
                elif fault == "truncate":
                    self._send(
                        200, data[: len(data) // 2], "application/octet-stream", length=len(data)
                    )
                    self.close_connection = True
                elif fault == "corrupt":
                    self._send(
                        200,
                        bytes(b ^ 0xFF for b in data[:64]) + data[64:],
                        "application/octet-stream",
                    )
                elif fault == "drop":
                    self.close_connection = True
                else:
                    self._send(200, data, "application/octet-stream", head)
                return
            self._send(404, b"not found", "text/plain", head)

    return Handler


def serve_index(state: IndexServer) -> Iterator[IndexServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


FAKE_RELEASE = "20990101"  # not in pybuild's table of PBS assets: no compiler is pinned for it


def write_layer(
    directory: Path,
    requirements: str,
    *,
    runtime: Path | None = None,
    arch: str = "aarch64",
    glibc: str = "2.34",
    name: str = "testlayer",
    extra: str = "",
) -> Path:
    """Write layer.toml + requirements.txt; the runtime is a local file:// URL when given.

    The runtime's release is one pybuild's table does not know, so layer.toml pins the other
    architecture's compiler itself (another fixture archive); neither is a real CPython, so
    builds of such a layer pass `--python` (`python_args()`), the escape hatch."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text(requirements, encoding="utf-8")
    if runtime is None:
        runtime = make_runtime_archive(
            directory / "runtime",
            name=f"cpython-3.11.15+{FAKE_RELEASE}-{arch}-unknown-linux-gnu-install_only.tar.gz",
        )
    other = "x86_64" if arch == "aarch64" else "aarch64"
    compiler = make_runtime_archive(
        directory / "runtime",
        name=f"cpython-3.11.15+{FAKE_RELEASE}-{other}-unknown-linux-gnu-install_only_stripped.tar.gz",
    )
    layer = directory / "layer.toml"
    layer.write_text(
        f'name = "{name}"\n'
        'requirements = "requirements.txt"\n'
        f"{extra}"
        "[target]\n"
        f'arch = "{arch}"\nglibc = "{glibc}"\npython = "3.11"\n'
        "[runtime]\n"
        f'url = "{runtime.as_uri()}"\n'
        f'sha256 = "{sha256_of(runtime)}"\n'
        f"size = {runtime.stat().st_size}\n"
        f'python_version = "3.11.15"\nrelease = "{FAKE_RELEASE}"\n'
        'flavor = "install_only"\n'
        f"[runtime.compilers.{other}]\n"
        f'url = "{compiler.as_uri()}"\n'
        f'sha256 = "{sha256_of(compiler)}"\n'
        f"size = {compiler.stat().st_size}\n",
        encoding="utf-8",
    )
    return layer


def python_args() -> list[str]:
    """`--python` with this interpreter: the compiler for layers whose runtime is a fixture."""
    return ["--python", sys.executable]


def host_compiler() -> Compiler:
    """This interpreter as the bytecode compiler (not pinned: fixture runtimes are no Python)."""
    return Compiler((sys.executable,), platform.python_version(), None, "--python")


def fixture_lock(layer: Layer, runtime: Path, wheels: list[Path]) -> tuple[Lock, dict[str, Path]]:
    """A lock of `layer` made without uv: the runtime archive and these wheel files; and the
    fetched-files mapping `pipeline.build` takes."""
    sha256, size = file_sha256(runtime)
    locked_runtime = LockedRuntime(
        provider=Provider.PBS,
        python_version="3.11.15",
        description=f"fixture runtime {runtime.name}",
        files=(LockedFile(filename=runtime.name, sha256=sha256, size=size, url=runtime.as_uri()),),
    )
    locked_wheels = []
    files = {sha256: runtime}
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        digest, length = file_sha256(wheel)
        locked_wheels.append(
            LockedWheel(
                name=name, version=str(version), filename=wheel.name, sha256=digest, size=length
            )
        )
        files[digest] = wheel
    lock = Lock(
        name=layer.name,
        target=layer.target,
        runtime=locked_runtime,
        compilers=(),
        wheels=tuple(locked_wheels),
        inputs=input_digests(layer, load_requirements(layer.requirements)),
    )
    return lock, files


def write_fixture_lock(layer_path: Path, runtime: Path, wheels: list[Path]) -> Lock:
    """`fixture_lock`, written as the layer's lock.json (current: its inputs are the layer's)."""
    from pybuild.model.layerfile import load_layer

    lock, _ = fixture_lock(load_layer(layer_path), runtime, wheels)
    (layer_path.parent / "lock.json").write_text(lock.to_json(), encoding="utf-8")
    return lock


def check_reads_only_regular_files(
    path: Path, load: Callable[[Path], object], error: type[Exception]
) -> None:
    """`load(path)` refuses with `error`, saying why in one line naming `path`, what it must not
    read: a FIFO (opening it would wait for a writer forever), a link to ``/dev/zero`` (never
    ends), a file over `MAX_INPUT_BYTES`, bytes that are not UTF-8."""
    import pytest

    def refused(reason: str) -> None:
        with pytest.raises(error) as info:
            load(path)
        assert str(info.value) == f"{path}: cannot read: {reason}"
        path.unlink()

    os.mkfifo(path)
    refused("not a regular file (a FIFO)")
    path.symlink_to("/dev/zero")
    refused("not a regular file (a character device)")
    path.write_bytes(b"#" * (MAX_INPUT_BYTES + 1))
    refused("larger than 16,777,216 bytes")
    path.write_bytes(b"#\xff")
    refused("not UTF-8 text (byte 0xff at offset 1)")


# --- damaged zips: one member made unreadable, the central directory's CRC left alone -----------

ZIP_DAMAGE = {
    # how -> a fragment of the reason pybuild gives
    "corrupt compressed data": "compressed data is corrupt",
    "bad local header magic": "Bad magic number for file header",
    "encryption flag": "encrypted",
    "unsupported compression method": "compression method 9 is not supported",
    "local and central names differ": "File name in directory",
    "local header past the central directory": "is not before the central directory",
}


def _central_entry(raw: bytes | bytearray, archive: zipfile.ZipFile, name: str) -> int:
    """The offset of `name`'s central directory record."""
    position = archive.start_dir
    while raw[position : position + 4] == b"PK\x01\x02":
        name_length, extra, comment = struct.unpack("<HHH", raw[position + 28 : position + 34])
        if raw[position + 46 : position + 46 + name_length].decode() == name:
            return position
        position += 46 + name_length + extra + comment
    raise KeyError(name)


def damage_zip(path: Path, member: str, how: str) -> Path:
    """Make `member` of the zip at `path` unreadable in one of the `ZIP_DAMAGE` ways, in place."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        central = _central_entry(raw, archive, member)
    local = info.header_offset
    name_length, extra = struct.unpack("<HH", raw[local + 26 : local + 30])
    data = local + 30 + name_length + extra
    if how == "corrupt compressed data":
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size > 16
        for i in range(4):
            raw[data + i] ^= 0xFF
    elif how == "bad local header magic":
        raw[local : local + 4] = b"XXXX"
    elif how == "encryption flag":
        raw[local + 6] |= 1
        raw[central + 8] |= 1
    elif how == "unsupported compression method":
        raw[local + 8 : local + 10] = struct.pack("<H", 9)
        raw[central + 10 : central + 12] = struct.pack("<H", 9)
    elif how == "local and central names differ":
        raw[local + 30] ^= 0x20
    elif how == "local header past the central directory":
        raw[central + 42 : central + 46] = struct.pack("<I", len(raw) + 1000)
    else:
        raise ValueError(how)
    path.write_bytes(bytes(raw))
    return path
