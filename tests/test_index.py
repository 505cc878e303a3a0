from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from helpers import IndexServer, make_wheel, sha256_of
from pybuild.support.index import PYPI_SIMPLE, configured_indexes, project_files
from pybuild.support.net import RetryPolicy


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_DIRS": str(tmp_path / "none"),
        "PIP_CONFIG_FILE": os.devnull,
        **values,
    }


def test_default_is_pypi(tmp_path: Path) -> None:
    indexes = configured_indexes(env=_env(tmp_path))
    assert indexes.urls == (PYPI_SIMPLE,)
    assert indexes.source == "default"


def test_precedence(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        PIP_INDEX_URL="https://pip.example/simple",
        UV_DEFAULT_INDEX="https://uv.example/simple",
        UV_INDEX="internal=https://internal.example/simple",
        PIP_EXTRA_INDEX_URL="https://extra.example/simple https://uv.example/simple",
    )
    indexes = configured_indexes(env=env)
    assert indexes.primary == "https://uv.example/simple"
    assert indexes.source == "UV_DEFAULT_INDEX"
    assert indexes.extra == ("https://internal.example/simple", "https://extra.example/simple")
    explicit = configured_indexes(env={**env, "PYBUILD_INDEX_URL": "https://mine.example/"})
    assert explicit.urls == ("https://mine.example/",)
    assert configured_indexes("https://cli.example/", env=env).source == "--index-url"


def test_pip_config_files_are_honoured(tmp_path: Path) -> None:
    user = tmp_path / ".config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url =\n  https://a.example/simple\n  https://b.example/simple\n"
    )
    env = _env(tmp_path)
    del env["PIP_CONFIG_FILE"]
    indexes = configured_indexes(env=env)
    assert indexes.urls == (
        "https://mirror.example/simple",
        "https://a.example/simple",
        "https://b.example/simple",
    )
    assert indexes.source == "pip configuration"
    # PIP_CONFIG_FILE=/dev/null turns every configuration file off, as in pip.
    assert configured_indexes(env=_env(tmp_path)).urls == (PYPI_SIMPLE,)


@pytest.mark.parametrize("json_pages", [False, True])
def test_project_files_html_and_json(index: IndexServer, tmp_path: Path, json_pages: bool) -> None:
    index.json_pages = json_pages
    wheel = make_wheel(tmp_path / "d", "Some.Project", "1.0")
    index.add(wheel)
    files = project_files(index.url, "some_project", RetryPolicy(attempts=1))
    assert [(f.filename, f.sha256) for f in files] == [(wheel.name, sha256_of(wheel))]
    assert files[0].url == index.file_url(wheel.name)


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (b'["not", "an", "object"]', "no list of files"),
        (b'{"files": {"a": 1}}', "no list of files"),
        (b'{"files": ["demo-1.0.whl"]}', "a file entry that is not an object"),
        (b'{"files": [{"filename": "demo-1.0.whl"}]}', "a file entry without a filename and url"),
        (b'{"files": [{"url": "x", "filename": 7}]}', "a file entry without a filename and url"),
        (
            b'{"files": [{"url": "x", "filename": "d.whl", "hashes": {"sha256": 1}}]}',
            "d.whl: a sha256 that is not a string",
        ),
        (b"{not json", "Expecting property name"),
    ],
)
def test_a_malformed_json_page_is_a_value_error(index: IndexServer, page: bytes, why: str) -> None:
    """What callers report as "unreachable" (ValueError), never a KeyError or TypeError."""
    index.json_pages = True
    index.raw_json_pages["demo"] = page
    with pytest.raises(ValueError, match=re.escape(why)):
        project_files(index.url, "demo", RetryPolicy(attempts=1))


def test_file_index(tmp_path: Path) -> None:
    page = tmp_path / "simple" / "demo"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        '<a href="../../files/demo-1.0-py3-none-any.whl#sha256=' + "a" * 64 + '">x</a>'
    )
    files = project_files((tmp_path / "simple").as_uri(), "Demo", RetryPolicy(attempts=1))
    assert files[0].filename == "demo-1.0-py3-none-any.whl"
    assert files[0].url == (tmp_path / "files" / "demo-1.0-py3-none-any.whl").as_uri()
    assert files[0].sha256 == "a" * 64
