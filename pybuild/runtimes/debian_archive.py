"""Debian's archive, read directly: which .deb is current for a package, and where it lives.

No apt and no dpkg: the suite's ``InRelease`` (signature checked with ``gpgv`` against Debian's
archive keyring where the host has them), the ``Packages.xz`` index it lists (content-addressed in
pybuild's cache by the sha256 InRelease gives), and dpkg's version ordering to pick the newest
version across the release, its updates and its security suite. What comes out is pinned by
sha256 and fetched from any mirror by its pool path.

Debian's archive keeps only the current version of a package: when a point release or a
security update replaces python3.11, the .deb a lock pins disappears from the mirrors. Fetching
such a file says so and that `pybuild lock` pins the current one.
"""

from __future__ import annotations

import lzma
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import FetchError, LockError
from pybuild.model.lockfile import DebianOrigin, LockedFile
from pybuild.model.target import Arch
from pybuild.support.cache import Cache, Want
from pybuild.support.net import RetryPolicy, TransientError, open_url, read_chunks
from pybuild.ui import Ui

DEFAULT_MIRRORS = {
    "debian": "https://deb.debian.org/debian",
    "debian-security": "https://deb.debian.org/debian-security",
}
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN_ARCH = {Arch.AARCH64: "arm64", Arch.X86_64: "amd64"}
_COMPONENT = "main"


def suites(release: str) -> tuple[tuple[str, str], ...]:
    """(archive, distribution) holding a release's packages: the release, its point-release
    updates and its security updates."""
    return (
        ("debian", release),
        ("debian", f"{release}-updates"),
        ("debian-security", f"{release}-security"),
    )


# --- dpkg's version ordering (deb-version(7)) ---------------------------------------------------


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: non-digit runs by character order (~ first), digit runs numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    # dpkg: the epoch ends at the first colon (the upstream part may hold more), the revision
    # starts after the last hyphen.
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian version `a` is older than, equal to or newer than `b`."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return ea - eb
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def upstream_version(version: str) -> str:
    """The upstream part of a Debian version: ``3.11.2`` of ``3.11.2-6+deb12u9``."""
    return _split_version(version)[1]


# --- the archive ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DebPackage:
    """One binary package as an index lists it."""

    name: str
    version: str
    architecture: str
    archive: str
    path: str  # pool path
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        """The .deb's file name: the last component of its pool path."""
        return self.path.rsplit("/", 1)[-1]

    def locked(self) -> LockedFile:
        """The package as a lock pins it: the file's name, sha256 and size, and its archive path."""
        return LockedFile(
            filename=self.filename,
            sha256=self.sha256,
            size=self.size,
            debian=DebianOrigin(
                package=self.name,
                version=self.version,
                architecture=self.architecture,
                archive=self.archive,
                path=self.path,
            ),
        )


def mirror_url(mirrors: Mapping[str, str], archive: str, path: str) -> str:
    """The URL of a path of `archive` ("debian" or "debian-security") on its mirror in `mirrors`,
    else on Debian's own."""
    base = mirrors.get(archive) or DEFAULT_MIRRORS[archive]
    return f"{base.rstrip('/')}/{path}"


def _signed_text(data: bytes, url: str, ui: Ui, keyring: Path) -> str:
    """The text of an InRelease file, its signature checked with gpgv when possible."""
    gpgv = shutil.which("gpgv")
    scheme = urllib.parse.urlsplit(url).scheme
    if gpgv is None or not keyring.is_file():
        if scheme == "http":
            raise LockError(
                f"{url}: cannot check its signature (needs gpgv and {keyring}) and plain http "
                "proves nothing; use an https mirror or install gpgv and debian-archive-keyring"
            )
        ui.warn(f"{url}: signature not checked (no gpgv or {keyring}); trusting {scheme}")
        return _clearsigned_body(data.decode("utf-8", errors="replace"))
    with tempfile.TemporaryDirectory(prefix="pybuild-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        body = Path(tmp) / "body"
        completed = subprocess.run(
            [gpgv, "--keyring", str(keyring), "--output", str(body), str(signed)],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise LockError(f"{url}: bad signature ({last})")
        return body.read_text(encoding="utf-8", errors="replace")


def _clearsigned_body(text: str) -> str:
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    body = text.split("\n\n", 1)[1]
    return body.split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]


def _index_entry(release: str, arch: str) -> tuple[str, int] | None:
    """(sha256, size) of main/binary-ARCH/Packages.xz in an InRelease's SHA256 list."""
    in_sha256 = False
    wanted = f"{_COMPONENT}/binary-{arch}/Packages.xz"
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.strip() == "SHA256:"
            continue
        parts = line.split()
        if in_sha256 and len(parts) == 3 and parts[2] == wanted:
            return parts[0], int(parts[1])
    return None


_FIELD = re.compile(r"^(Package|Version|Architecture|Filename|SHA256|Size): (.*)$", re.M)


def _parse_packages(text: str, names: set[str], archive: str) -> list[DebPackage]:
    found = []
    for stanza in text.split("\n\n"):
        if not stanza.startswith("Package: "):
            continue
        name = stanza[9 : stanza.find("\n") if "\n" in stanza else None].strip()
        if name not in names:
            continue
        fields = dict(_FIELD.findall(stanza))
        try:
            found.append(
                DebPackage(
                    name=name,
                    version=fields["Version"],
                    architecture=fields["Architecture"],
                    archive=archive,
                    path=fields["Filename"],
                    sha256=fields["SHA256"],
                    size=int(fields["Size"]),
                )
            )
        except (KeyError, ValueError) as err:
            raise LockError(
                f"the {archive} index has an unreadable record for {name} ({err})"
            ) from None
    return found


class DebianArchive:
    """Reads the current package indexes of one Debian release through the given mirrors."""

    def __init__(
        self,
        release: str,
        cache: Cache,
        ui: Ui,
        mirrors: dict[str, str] | None = None,
        *,
        retry: RetryPolicy | None = None,
        keyring: Path | None = None,
    ) -> None:
        self.release = release
        self.cache = cache
        self.ui = ui
        self.mirrors = {**DEFAULT_MIRRORS, **(mirrors or {})}
        self.retry = retry or RetryPolicy()
        self.keyring = keyring or KEYRING

    def _read(self, url: str) -> bytes:
        def attempt() -> bytes:
            with open_url(url) as response:
                return response.read()

        try:
            return self.retry.run(attempt)
        except (OSError, TransientError) as err:
            raise LockError(f"cannot read {url} ({err})") from None

    def _packages_index(self, archive: str, dist: str, arch: str) -> str | None:
        base = self.mirrors[archive].rstrip("/")
        release_url = f"{base}/dists/{dist}/InRelease"
        release = _signed_text(self._read(release_url), release_url, self.ui, self.keyring)
        entry = _index_entry(release, arch)
        if entry is None:
            return None  # e.g. an -updates suite with nothing for this architecture
        sha256, size = entry
        want = Want(f"Packages-{dist}-{arch}.xz", sha256, size)
        path, _ = self.cache.lookup(want)
        if path is None:
            url = f"{base}/dists/{dist}/{_COMPONENT}/binary-{arch}/Packages.xz"
            with self.cache.locked(sha256):
                try:
                    with open_url(url) as response:
                        path, _, _ = self.cache.store(want, url, read_chunks(response))
                except (OSError, TransientError) as err:
                    raise LockError(f"cannot read {url} ({err})") from None
                except FetchError as err:
                    raise LockError(f"{url} is not the index InRelease lists: {err}") from None
        try:
            return lzma.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        except lzma.LZMAError as err:
            raise LockError(f"{path}: not an xz file ({err})") from None

    def newest(self, names: list[str], arch: Arch) -> list[DebPackage]:
        """The newest version of each package for `arch` across the release's suites."""
        debian_arch = DEBIAN_ARCH[arch]
        best: dict[str, DebPackage] = {}
        for archive, dist in suites(self.release):
            text = self._packages_index(archive, dist, debian_arch)
            if text is None:
                continue
            for package in _parse_packages(text, set(names), archive):
                if package.architecture not in (debian_arch, "all"):
                    continue
                current = best.get(package.name)
                if current is None or compare_versions(package.version, current.version) > 0:
                    best[package.name] = package
        missing = [n for n in names if n not in best]
        if missing:
            raise LockError(
                f"Debian {self.release} has no {debian_arch} package {', '.join(missing)} "
                f"(searched {', '.join(d for _, d in suites(self.release))})"
            )
        return [best[n] for n in names]
