"""A Debian archive in a directory: .deb files, Packages.xz indexes and InRelease files signed
with a throwaway GnuPG key, served as file:// mirrors (no network)."""

from __future__ import annotations

import hashlib
import io
import lzma
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

File = bytes | tuple[str, str]  # contents, or ("link", target)


def make_deb(path: Path, files: dict[str, File]) -> Path:
    """A .deb (ar: debian-binary, control.tar.xz, data.tar.xz) holding `files`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        root = tarfile.TarInfo("./")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(f"./{name}")
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o755 if name.startswith("usr/bin/") else 0o644
                tar.addfile(info, io.BytesIO(content))
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:xz"):
        pass

    def member(name: str, payload: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode()
        return header + payload + (b"\n" if len(payload) % 2 else b"")

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"!<arch>\n"
        + member("debian-binary", b"2.0\n")
        + member("control.tar.xz", control.getvalue())
        + member("data.tar.xz", data.getvalue())
    )
    return path


@dataclass
class Key:
    """A throwaway signing key: its GnuPG home and its public keyring."""

    home: Path
    keyring: Path


def make_key(directory: Path) -> Key:
    home = directory / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    env = {"GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "pybuild test",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    keyring = directory / "keyring.gpg"
    exported = subprocess.run(
        ["gpg", "--batch", "--export", "pybuild test"], env=env, check=True, capture_output=True
    )
    keyring.write_bytes(exported.stdout)
    return key_of(home, keyring)


def key_of(home: Path, keyring: Path) -> Key:
    return Key(home, keyring)


@dataclass
class FakeArchive:
    """`root/<archive>/dists/<dist>/...` and `root/<archive>/pool/...` for each archive."""

    root: Path
    key: Key
    packages: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def mirrors(self) -> dict[str, str]:
        return {name: (self.root / name).as_uri() for name in ("debian", "debian-security")}

    def add(  # noqa: PLR0917 - an index record's fields, in the order Debian writes them
        self, archive: str, dist: str, name: str, version: str, arch: str, files: dict[str, File]
    ) -> Path:
        pool = f"pool/main/{name[0]}/{name}/{name}_{version}_{arch}.deb"
        deb = make_deb(self.root / archive / pool, files)
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        self.packages.setdefault((archive, dist, arch), []).append(
            f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: {pool}\n"
            f"Size: {deb.stat().st_size}\nSHA256: {digest}\nDescription: test\n"
        )
        return deb

    def publish(
        self, dists: list[tuple[str, str]], arches: tuple[str, ...] = ("arm64", "amd64")
    ) -> None:
        for archive, dist in dists:
            lines = []
            for arch in arches:
                text = "\n".join(self.packages.get((archive, dist, arch), [])) + "\n"
                index = (
                    self.root / archive / "dists" / dist / "main" / f"binary-{arch}" / "Packages.xz"
                )
                index.parent.mkdir(parents=True, exist_ok=True)
                index.write_bytes(lzma.compress(text.encode()))
                digest = hashlib.sha256(index.read_bytes()).hexdigest()
                lines.append(f" {digest} {index.stat().st_size} main/binary-{arch}/Packages.xz")
            release = (
                f"Origin: Debian\nSuite: {dist}\nCodename: {dist}\nSHA256:\n"
                + "\n".join(lines)
                + "\n"
            )
            plain = self.root / archive / "dists" / dist / "Release"
            plain.write_text(release)
            subprocess.run(
                [
                    "gpg",
                    "--batch",
                    "--yes",
                    "--clearsign",
                    "-o",
                    str(plain.with_name("InRelease")),
                    str(plain),
                ],
                env={"GNUPGHOME": str(self.key.home)},
                check=True,
                capture_output=True,
            )
