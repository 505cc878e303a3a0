"""`pybuild build` end to end on a small layer: real wheels' shapes, a PBS-shaped runtime."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import FIXTURES, IndexServer, make_fake_runtime, make_wheel, write_layer
from pybuild.cli import main

pytestmark = pytest.mark.slow  # uv + a build
SITE = "python/lib/python3.11/site-packages"


def _populate(index: IndexServer, root: Path) -> None:
    native = (FIXTURES / "good-aarch64.so").read_bytes()
    index.add(
        make_wheel(
            root,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/__init__.py": b"from native._speed import *  # noqa\n",
                "native/_speed.cpython-311-aarch64-linux-gnu.so": native,
                "native/tests/test_speed.py": b"def test():\n    assert True\n",
            },
        ),
        make_wheel(
            root,
            "app",
            "1.0",
            requires=["native==2.0"],
            files={
                "app/__init__.py": b"import native\nFROZEN = {'a', 'b', 'c'}\n",
                "app/ui/index.html": b"<html></html>\n" * 100,
                "app/cli.py": b"def main():\n    return 0\n",
                "app-1.0.dist-info/entry_points.txt": b"[console_scripts]\napp = app.cli:main\n",
                "app-1.0.dist-info/LICENSE": b"MIT\n",
                "app-1.0.dist-info/top_level.txt": b"app\n",
            },
        ),
    )


@pytest.fixture
def layer(index: IndexServer, tmp_path: Path) -> Path:
    _populate(index, tmp_path / "dists")
    runtime = make_fake_runtime(tmp_path / "runtime")
    path = write_layer(
        tmp_path / "layer",
        "app==1.0\nnative==2.0\n",
        runtime=runtime,
        extra='[prune.packages]\napp = ["app/ui/**"]\n',
    )
    assert main(["lock", "-q", "--layer", str(path)]) == 0
    return path


def _build(layer: Path, out: Path, *extra: str) -> int:
    return main(["build", "-q", "--layer", str(layer), "--out", str(out), *extra])


def test_build_produces_a_lambda_layer(layer: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    assert _build(layer, out) == 0
    archive = zipfile.ZipFile(out / "testlayer.zip")
    names = archive.namelist()
    assert names == sorted(names, key=lambda n: n.encode())
    assert "python/bin/python3.11" in names
    assert archive.getinfo("python/bin/python3.11").external_attr >> 16 == 0o100755
    # Aliases are symlinks in PBS: left out (and reported), never duplicated.
    assert "python/bin/python3" not in names and "python/bin/python" not in names
    # Pruned: runtime's pip, test suites, tkinter, headers, static lib, unused libpython,
    # the package's tests and the per-package rule; dist-info trimmed.
    for gone in (
        "python/lib/python3.11/site-packages/pip/__init__.py",
        "python/lib/python3.11/test/test_os.py",
        "python/lib/python3.11/tkinter/",
        "python/include/python3.11/Python.h",
        "python/lib/libpython3.11.so.1.0",
        f"{SITE}/native/tests/test_speed.py",
        f"{SITE}/app/ui/index.html",
        f"{SITE}/app-1.0.dist-info/RECORD",
        f"{SITE}/app-1.0.dist-info/WHEEL",
    ):
        assert not any(n.startswith(gone) for n in names), gone
    for kept in (
        f"{SITE}/app-1.0.dist-info/METADATA",
        f"{SITE}/app-1.0.dist-info/LICENSE",
        f"{SITE}/app-1.0.dist-info/entry_points.txt",
        "python/lib/python3.11/os.py",
    ):
        assert kept in names
    # Console script for the layer's interpreter.
    assert archive.read("python/bin/app").startswith(b"#!/opt/python/bin/python3.11\n")
    # The ELF file was stripped.
    so = archive.read(f"{SITE}/native/_speed.cpython-311-aarch64-linux-gnu.so")
    assert len(so) < (FIXTURES / "good-aarch64.so").stat().st_size
    # Bytecode for stdlib and site-packages, hash-based, runtime's magic, /opt paths.
    pyc = archive.read(f"{SITE}/app/__pycache__/__init__.cpython-311.pyc")
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked
    code = marshal.loads(pyc[16:])  # noqa: S302 - our own build output
    assert code.co_filename == f"/opt/{SITE}/app/__init__.py"
    assert "python/lib/python3.11/__pycache__/os.cpython-311.pyc" in names

    sbom = json.loads(archive.read("python/pybuild.cdx.json"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert {c["name"] for c in sbom["components"]} == {"cpython", "app", "native"}

    report = json.loads((out / "testlayer.report.json").read_text())
    assert report["zip"]["sha256"] == _sha256(out / "testlayer.zip")
    rules = report["removed"]["by_rule"]
    assert rules["shared libpython that no ELF file needs"]["files"] == 2  # .so.1.0 + link
    assert rules["layer.toml [prune.packages] app"]["files"] == 1
    assert {"link": "python/bin/python3", "target": "python3.11"} in report["symlinks_dropped"]
    assert [s["stage"] for s in report["stages"]] == ["assemble", "prune", "strip", "bytecode"]
    assert report["strip"][0]["bytes_after"] < report["strip"][0]["bytes_before"]
    assert (out / "testlayer.report.txt").read_text().startswith("testlayer: testlayer.zip")

    # What a deployer needs, beside the zip (Amazon Linux 2023 profile: glibc 2.34).
    publish = json.loads((out / "testlayer.publish-layer-version.json").read_text())
    assert publish["LayerName"] == "testlayer"
    assert publish["CompatibleArchitectures"] == ["arm64"]
    assert publish["CompatibleRuntimes"] == ["nodejs24.x", "nodejs22.x", "provided.al2023"]
    assert report["zip"]["sha256"][:16] in publish["Description"]
    serverless = (out / "testlayer.serverless.yml").read_text()
    assert "artifact: testlayer.zip" in serverless and "architecture: arm64" in serverless
    assert "Ref: TestlayerLambdaLayer" in serverless
    assert 'PYBUILD_PYTHON: "/opt/python/bin/python3.11"' in serverless
    sam = (out / "testlayer.sam.yaml").read_text()
    assert "Type: AWS::Serverless::LayerVersion" in sam and "ContentUri: testlayer.zip" in sam
    assert "Architectures: [arm64]" in sam and "Layers: [!Ref TestlayerLayer]" in sam


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sbom_is_valid_cyclonedx(layer: Path, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert _build(layer, tmp_path / "dist") == 0
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        document = archive.read("python/pybuild.cdx.json").decode()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    assert errors is None, errors


def test_same_bytes_under_perturbation(layer: Path, tmp_path: Path) -> None:
    """Builds in other directories, umask, time zone, locale; SOURCE_DATE_EPOCH unset/default."""
    assert _build(layer, tmp_path / "first") == 0
    env = {
        **os.environ,
        "TZ": "Asia/Kolkata",
        "LANG": "de_DE.UTF-8",
        "LC_ALL": "C",
        "SOURCE_DATE_EPOCH": "315532800",
    }
    work = tmp_path / "elsewhere" / "deeper"
    work.mkdir(parents=True)
    shutil.copytree(layer.parent, work / "layer")
    result = subprocess.run(
        [
            "sh",
            "-c",
            'umask 077 && exec "$0" -m pybuild build -q --layer layer/layer.toml --out out',
            sys.executable,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (work / "out" / "testlayer.zip").read_bytes() == (
        tmp_path / "first" / "testlayer.zip"
    ).read_bytes()
    assert (work / "out" / "testlayer.report.json").read_bytes() == (
        tmp_path / "first" / "testlayer.report.json"
    ).read_bytes()


def test_source_date_epoch_sets_every_timestamp(
    layer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000001")
    assert _build(layer, tmp_path / "dist") == 0
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_verify_failure_fails_the_build(
    index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.add(
        make_wheel(
            tmp_path / "dists",
            "bad",
            "1.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "bad/_x.so": (FIXTURES / "good-x86_64.so").read_bytes(),
                "bad/_y.so": (FIXTURES / "needs-glibc-2.38.so").read_bytes(),
            },
        )
    )
    layer = write_layer(
        tmp_path / "layer", "bad==1.0\n", runtime=make_fake_runtime(tmp_path / "runtime")
    )
    assert main(["lock", "-q", "--layer", str(layer)]) == 0
    assert _build(layer, tmp_path / "dist") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: verify failed: 2 problems: ")
    assert f"{SITE}/bad/_x.so: architecture: expected aarch64" in err
    assert f"{SITE}/bad/_y.so: symbol version from libc.so.6" in err
    assert not (tmp_path / "dist" / "testlayer.zip").exists()


def test_budget_failure_keeps_the_previous_zip(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    assert _build(layer, out) == 0
    previous = (out / "testlayer.zip").read_bytes()
    layer.write_text(layer.read_text() + "[budgets]\nzip_bytes = 1000\n")
    (layer.parent / "extra.txt").write_text("")
    assert _build(layer, out) == 1
    err = capsys.readouterr().err
    assert "over budget: zip is " in err and "budget 1,000; largest: runtime " in err
    assert (out / "testlayer.zip").read_bytes() == previous
    assert sorted(p.name for p in out.iterdir()) == [
        "testlayer.publish-layer-version.json",
        "testlayer.report.json",
        "testlayer.report.txt",
        "testlayer.sam.yaml",
        "testlayer.serverless.yml",
        "testlayer.zip",
    ]


def test_sourceless_bytecode_without_debug_ranges(layer: Path, tmp_path: Path) -> None:
    layer.write_text(layer.read_text() + '[bytecode]\nmode = "sourceless"\ndebug_ranges = false\n')
    assert _build(layer, tmp_path / "dist") == 0
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        names = set(archive.namelist())
        pyc = archive.read(f"{SITE}/app/__init__.pyc")
    assert f"{SITE}/app/__init__.py" not in names
    assert not any("__pycache__" in n for n in names)
    code = marshal.loads(pyc[16:])  # noqa: S302 - our own build output
    assert code.co_filename == f"/opt/{SITE}/app/__init__.pyc"  # the file that exists
    positions = [p for p in code.co_positions() if p[0] is not None]
    assert positions and all(p[2] is None and p[3] is None for p in positions)  # no columns
    assert {p[0] for p in positions} >= {1, 2}  # line numbers stay


def test_include_the_layers_own_code(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (layer.parent / "handler_code.py").write_text("def handle():\n    return 1\n")
    (layer.parent / "mypkg" / "__pycache__").mkdir(parents=True)
    (layer.parent / "mypkg" / "__init__.py").write_text("X = 1\n")
    (layer.parent / "mypkg" / "data.json").write_text("{}\n")
    (layer.parent / "mypkg" / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"old")
    layer.write_text(
        layer.read_text() + '[include]\nsite_packages = ["handler_code.py", "mypkg"]\n'
    )
    assert _build(layer, tmp_path / "dist") == 0
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        names = set(archive.namelist())
    assert {
        f"{SITE}/handler_code.py",
        f"{SITE}/__pycache__/handler_code.cpython-311.pyc",
        f"{SITE}/mypkg/__init__.py",
        f"{SITE}/mypkg/data.json",
    } <= names
    assert f"{SITE}/mypkg/__pycache__/stale.cpython-311.pyc" not in names

    # A file a wheel installs cannot be replaced by the layer's own.
    (layer.parent / "app").mkdir()
    (layer.parent / "app" / "__init__.py").write_text("X = 2\n")
    layer.write_text(layer.read_text().replace('"mypkg"]', '"mypkg", "app"]'))
    assert _build(layer, tmp_path / "dist") == 2
    assert f"and app both install {SITE}/app/__init__.py" in capsys.readouterr().err


def test_missing_compiler_is_one_clear_line(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _build(layer, tmp_path / "dist", "--python", str(tmp_path / "nope")) == 2
    assert capsys.readouterr().err == (
        f"error: --python {tmp_path / 'nope'}: expected CPython 3.11, found nothing that runs\n"
    )


def test_stale_lock_is_refused(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (layer.parent / "requirements.txt").write_text("app==1.0\nnative==2.1\n")
    assert _build(layer, tmp_path / "dist") == 2
    assert "is stale" in capsys.readouterr().err


def test_unknown_package_in_prune_config(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer.write_text(layer.read_text().replace("[prune.packages]\napp", "[prune.packages]\nnope"))
    assert _build(layer, tmp_path / "dist") == 2
    assert "[prune.packages] nope: not a distribution of this layer" in capsys.readouterr().err
