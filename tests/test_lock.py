"""`pybuild lock` end to end: uv resolving against a loopback index built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import IndexServer, make_sdist, make_wheel, sha256_of, write_layer
from pybuild.cli import main
from pybuild.model.target import Arch, Target
from pybuild.model.versions import GlibcVersion, PythonVersion
from pybuild.stages.lock import select_wheel
from pybuild.stages.resolve import Candidate

# The tests that run uv are marked slow; picking a wheel is pure and fast.
uv = pytest.mark.slow


def _candidates(*filenames: str) -> list[Candidate]:
    return [Candidate(f, f"https://example.invalid/{f}", None, None) for f in filenames]


AARCH64 = Target(arch=Arch.AARCH64, glibc=GlibcVersion(2, 34), python=PythonVersion(3, 11))


def test_select_prefers_cpython_abi_over_abi3_over_pure() -> None:
    files = _candidates(
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0-cp37-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_28_aarch64.whl",
    )
    best = select_wheel(files, AARCH64)
    assert best is not None
    assert best.filename == "pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert select_wheel(files[:2], AARCH64).filename.startswith("pkg-1.0-cp37-abi3")  # type: ignore[union-attr]


def test_select_respects_glibc_ceiling_and_arch() -> None:
    files = _candidates(
        "pkg-1.0-cp311-cp311-manylinux_2_35_aarch64.whl",
        "pkg-1.0-cp311-cp311-musllinux_1_2_aarch64.whl",
        "pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    )
    assert select_wheel(files, AARCH64) is None
    x86 = Target(arch=Arch.X86_64, glibc=GlibcVersion(2, 34), python=PythonVersion(3, 11))
    assert select_wheel(files, x86).filename.endswith("x86_64.whl")  # type: ignore[union-attr]
    newest = _candidates(
        "pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
        "pkg-1.0-cp311-cp311-manylinux_2_28_aarch64.whl",
    )
    assert select_wheel(newest, AARCH64).filename.endswith("2_28_aarch64.whl")  # type: ignore[union-attr]


def test_select_prefers_higher_build_number() -> None:
    files = _candidates(
        "pkg-1.0-py3-none-any.whl", "pkg-1.0-2-py3-none-any.whl", "pkg-1.0-1-py3-none-any.whl"
    )
    assert select_wheel(files, AARCH64).filename == "pkg-1.0-2-py3-none-any.whl"  # type: ignore[union-attr]


def _populate(index: IndexServer, root: Path) -> dict[str, Path]:
    wheels = {
        "app": make_wheel(
            root, "app", "1.0", requires=["native>=2", "helper; sys_platform == 'win32'"]
        ),
        "native": make_wheel(
            root, "native", "2.0", "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
        ),
        "native_x86": make_wheel(root, "native", "2.0", "cp311-cp311-manylinux_2_17_x86_64"),
        "native_pure": make_wheel(root, "native", "2.0", "py3-none-any"),
        "native_new": make_wheel(root, "native", "2.0", "cp311-cp311-manylinux_2_39_aarch64"),
        "helper": make_wheel(root, "helper", "1.0"),
    }
    index.add(*wheels.values())
    return wheels


def _lock(layer: Path, *extra: str) -> int:
    return main(["lock", "--layer", str(layer), "-q", *extra])


@uv
def test_lock_selects_target_wheels_and_is_byte_stable(index: IndexServer, tmp_path: Path) -> None:
    wheels = _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n")
    assert _lock(layer) == 0
    lock_path = layer.parent / "lock.json"
    first = lock_path.read_bytes()
    data = json.loads(first)
    by_name = {w["name"]: w for w in data["wheels"]}
    # helper is only needed on Windows: the markers were evaluated for the target, not dropped.
    assert sorted(by_name) == ["app", "native"]
    assert by_name["native"]["filename"] == wheels["native"].name
    assert by_name["native"]["sha256"] == sha256_of(wheels["native"])
    assert by_name["native"]["size"] == wheels["native"].stat().st_size
    assert data["target"] == {"arch": "aarch64", "glibc": "2.34", "python": "3.11"}
    assert first.endswith(b"\n") and str(index.port) not in first.decode()

    lock_path.unlink()
    assert _lock(layer) == 0
    assert lock_path.read_bytes() == first

    assert _lock(layer, "--check") == 0


@uv
def test_json_index_with_sizes_needs_no_download(index: IndexServer, tmp_path: Path) -> None:
    index.json_pages = True
    _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n")
    assert _lock(layer) == 0
    html_lock = (layer.parent / "lock.json").read_bytes()
    assert not (tmp_path / "cache" / "sha256").exists()  # sizes and hashes came from the index
    index.json_pages = False
    (layer.parent / "lock.json").unlink()
    assert _lock(layer) == 0
    assert (layer.parent / "lock.json").read_bytes() == html_lock  # same lock either way


@uv
def test_lock_for_x86_64(index: IndexServer, tmp_path: Path) -> None:
    wheels = _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n", arch="x86_64")
    assert _lock(layer) == 0
    data = json.loads((layer.parent / "lock.json").read_text())
    native = next(w for w in data["wheels"] if w["name"] == "native")
    assert native["filename"] == wheels["native_x86"].name


@uv
def test_index_without_hashes_or_sizes_is_measured(index: IndexServer, tmp_path: Path) -> None:
    index.hashes_in_pages = False
    wheels = _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n")
    assert _lock(layer) == 0
    data = json.loads((layer.parent / "lock.json").read_text())
    native = next(w for w in data["wheels"] if w["name"] == "native")
    assert native["sha256"] == sha256_of(wheels["native"])


@uv
def test_check_detects_stale_lock(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n")
    assert _lock(layer) == 0
    requirements = layer.parent / "requirements.txt"

    requirements.write_text("# comments and order do not matter\nnative==2.0\napp==1.0\n")
    assert _lock(layer, "--check") == 0

    requirements.write_text("app==1.0\nnative==2.1\n")
    capsys.readouterr()
    assert _lock(layer, "--check") == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "native 2.0 -> 2.1" in err
    requirements.write_text("native==2.0\nextra==0.1\n")
    assert _lock(layer, "--check") == 1
    assert "(extra added, app removed)" in capsys.readouterr().err
    # one name pinned under two markers: the locked version is one of them, not a change
    requirements.write_text(
        "app==1.0\nnative==2.0 ; python_version >= '3.11'\nnative==1.9 ; python_version < '3.11'\n"
    )
    assert _lock(layer, "--check") == 1  # the file changed...
    assert "requirements.txt changed; run" in capsys.readouterr().err  # ...but no pin did

    requirements.write_text("app==1.0\nnative==2.0\n")
    layer.write_text(
        layer.read_text().replace('python = "3.11"', 'python = "3.11"\nprofile = "al2023"')
    )
    assert _lock(layer, "--check") == 0  # the profile glibc 2.34 selects anyway
    layer.write_text(layer.read_text().replace("20990101", "20990102"))
    assert _lock(layer, "--check") == 1
    assert "layer.toml changed (name, target, profile or runtime)" in capsys.readouterr().err


def test_check_without_lock_fails_cleanly(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = write_layer(tmp_path / "layer", "app==1.0\n")
    assert _lock(layer, "--check") == 2
    assert "run `pybuild lock` first" in capsys.readouterr().err


@uv
def test_sdist_only_names_package_and_tags(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dists = tmp_path / "dists"
    index.add(make_wheel(dists, "app", "1.0", requires=["cext"]), make_sdist(dists, "cext", "3.1"))
    layer = write_layer(tmp_path / "layer", "app==1.0\ncext==3.1\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cext==3.1 has no wheel for aarch64 glibc 2.34 Python 3.11" in err
    assert "tags searched: cp311-cp311" in err and "manylinux_2_34_aarch64" in err
    assert "cext-3.1.tar.gz" in err
    assert not (layer.parent / "lock.json").exists()


@uv
def test_only_foreign_wheels(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dists = tmp_path / "dists"
    index.add(
        make_wheel(dists, "cext", "3.1", "cp311-cp311-manylinux_2_17_x86_64"),
        make_wheel(dists, "cext", "3.1", "cp311-cp311-manylinux_2_38_aarch64"),
    )
    layer = write_layer(tmp_path / "layer", "cext==3.1\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert "cext==3.1 has no wheel for aarch64 glibc 2.34" in err
    assert "cext-3.1-cp311-cp311-manylinux_2_38_aarch64.whl" in err


@uv
def test_unpinned_transitive_dependency(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert "the resolution needs native==2.0, which are not pinned" in err


@uv
def test_conflicting_closure(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dists = tmp_path / "dists"
    _populate(index, dists)
    index.add(make_wheel(dists, "native", "1.0"))
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==1.0\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resolution failed for aarch64 glibc 2.34 Python 3.11.15:")
    assert "native" in err and err.count("\n") == 1


def test_unpinned_requirement_is_refused_before_resolving(
    index: IndexServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    layer = write_layer(tmp_path / "layer", "app>=1.0\n")
    assert _lock(layer) == 2
    assert "app>=1.0 is not pinned: use app==VERSION" in capsys.readouterr().err
    assert index.requests == []


@uv
def test_a_version_that_does_not_exist_keeps_uvs_reason(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(index, tmp_path / "dists")
    layer = write_layer(tmp_path / "layer", "app==1.0\nnative==9.9\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: resolution failed for aarch64")
    assert "native" in err and "9.9" in err
    assert "no files at all" not in err and "has no wheel" not in err


@uv
def test_an_unreachable_index_keeps_uvs_reason(
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PYBUILD_INDEX_URL", "http://127.0.0.1:9/simple/")  # nothing listens
    layer = write_layer(tmp_path / "layer", "app==1.0\n")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resolution failed" in err
    assert "127.0.0.1:9" in err
    assert "no files at all" not in err and "has no wheel" not in err


def test_unknown_profile_or_glibc_is_refused_with_the_known_ones(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = write_layer(tmp_path / "layer", "app==1.0\n", glibc="2.31")
    assert _lock(layer) == 2
    err = capsys.readouterr().err
    assert "target.glibc: no system profile for glibc 2.31" in err
    assert "al2023 (glibc 2.34), al2 (glibc 2.26), debian12 (glibc 2.36)" in err
