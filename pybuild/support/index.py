"""The package index: which one the user configured, and where a given wheel file lives on it.

pybuild never hard-codes an index host. The index URLs come, in this order of precedence, from
``--index-url``/``PYBUILD_INDEX_URL`` (then only ``PYBUILD_EXTRA_INDEX_URL`` adds to it), uv's
environment (``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``, ``UV_INDEX``, ``UV_EXTRA_INDEX_URL``), pip's
environment (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``) and pip's configuration files, and
finally PyPI. Project pages are read through the simple API: PEP 691 JSON when the index offers
it, PEP 503 HTML otherwise (``file://`` indexes included).
"""

from __future__ import annotations

import configparser
import json
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import canonicalize_name

from pybuild.support.net import RetryPolicy, open_url

PYPI_SIMPLE = "https://pypi.org/simple/"
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True, slots=True)
class Indexes:
    """The configured indexes, primary first, and where that setting came from."""

    urls: tuple[str, ...]
    source: str

    @property
    def primary(self) -> str:
        """The first index, uv's ``--index-url``."""
        return self.urls[0]

    @property
    def extra(self) -> tuple[str, ...]:
        """The other indexes in order, uv's ``--extra-index-url``s."""
        return self.urls[1:]


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One file a project page lists: its file name, its URL (without fragment) and its sha256, None
    where the page gives none."""

    filename: str
    url: str
    sha256: str | None


def _split(value: str | None) -> list[str]:
    urls = []
    for item in (value or "").split():
        # UV_INDEX allows `name=url`
        name, sep, rest = item.partition("=")
        urls.append(rest if sep and "://" not in name else item)
    return urls


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's configuration files in pip's loading order (later ones override earlier ones)."""
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    home = Path(env.get("HOME", str(Path.home())))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def _pip_config(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    index: str | None = None
    extra: list[str] = []
    for path in _pip_config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue  # pip itself would complain; an unreadable file just sets nothing for us
        for key in ("index-url", "index_url"):
            if parser.has_option("global", key):
                index = parser.get("global", key).strip()
        for key in ("extra-index-url", "extra_index_url"):
            if parser.has_option("global", key):
                extra = _split(parser.get("global", key))
    return index, extra


def configured_indexes(
    override: str | None = None, env: Mapping[str, str] | None = None
) -> Indexes:
    """The indexes pip/uv would use on this machine, unless pybuild is told otherwise."""
    env = os.environ if env is None else env
    explicit = override or env.get("PYBUILD_INDEX_URL")
    if explicit:
        return Indexes(
            (explicit, *_split(env.get("PYBUILD_EXTRA_INDEX_URL"))),
            "--index-url" if override else "PYBUILD_INDEX_URL",
        )
    pip_index, pip_extra = _pip_config(env)
    candidates = [
        ("UV_DEFAULT_INDEX", env.get("UV_DEFAULT_INDEX")),
        ("UV_INDEX_URL", env.get("UV_INDEX_URL")),
        ("PIP_INDEX_URL", env.get("PIP_INDEX_URL")),
        ("pip configuration", pip_index),
    ]
    source, primary = next(((s, v) for s, v in candidates if v), ("default", PYPI_SIMPLE))
    extra = (
        _split(env.get("UV_INDEX"))
        + _split(env.get("UV_EXTRA_INDEX_URL"))
        + (_split(env.get("PIP_EXTRA_INDEX_URL")) or pip_extra)
    )
    urls: list[str] = []
    for url in (primary, *extra):
        if url not in urls:
            urls.append(url)
    return Indexes(tuple(urls), source)


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _project_page_url(index_url: str, project: str) -> str:
    return f"{index_url.rstrip('/')}/{canonicalize_name(project)}/"


def _read_page(url: str, retry: RetryPolicy) -> tuple[bytes, str]:
    """Fetch a project page; returns (body, content type)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.parse.unquote(parts.path))
        page = path / "index.html" if path.is_dir() else path
        return page.read_bytes(), "text/html"

    def attempt() -> tuple[bytes, str]:
        with open_url(url, accept=_ACCEPT) as response:
            return response.read(), response.headers.get("Content-Type", "")

    return retry.run(attempt)


def _json_files(page_url: str, data: object) -> list[IndexFile]:
    """The files of a PEP 691 project page; ValueError naming the page if it is not one."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{page_url}: not a PEP 691 project page ({why})")

    items = data.get("files") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise bad("no list of files")
    files: list[IndexFile] = []
    for item in items:
        if not isinstance(item, dict):
            raise bad("a file entry that is not an object")
        filename, url, hashes = item.get("filename"), item.get("url"), item.get("hashes", {})
        if not isinstance(filename, str) or not isinstance(url, str):
            raise bad("a file entry without a filename and url")
        sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
        if sha256 is not None and not isinstance(sha256, str):
            raise bad(f"{filename}: a sha256 that is not a string")
        absolute = urllib.parse.urljoin(page_url, url)
        files.append(IndexFile(filename, absolute.split("#", 1)[0], sha256))
    return files


def project_files(index_url: str, project: str, retry: RetryPolicy) -> list[IndexFile]:
    """The files an index lists for `project` (raises OSError/TransientError if unreachable)."""
    page_url = _project_page_url(index_url, project)
    body, content_type = _read_page(page_url, retry)
    files: list[IndexFile] = []
    if "json" in content_type:
        return _json_files(page_url, json.loads(body))
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page_url, href)
        base, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(base).path.rsplit("/", 1)[-1])
        algo, _, digest = fragment.partition("=")
        files.append(IndexFile(filename, base, digest if algo == "sha256" else None))
    return files
