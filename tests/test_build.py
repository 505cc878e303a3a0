"""`pybuild build` from the command line: fixture locks (no uv) for the options and the errors a
user meets, and one slow run from `pybuild lock` (uv against a loopback index) to the zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from helpers import (
    FIXTURES,
    IndexServer,
    make_fake_runtime,
    make_wheel,
    python_args,
    write_fixture_lock,
    write_layer,
)
from pybuild.cli import main

SITE = "python/lib/python3.11/site-packages"


def _wheels(directory: Path) -> list[Path]:
    return [
        make_wheel(
            directory,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/__init__.py": b"X = 1\n",
                "native/_speed.cpython-311-aarch64-linux-gnu.so": (
                    FIXTURES / "good-aarch64.so"
                ).read_bytes(),
            },
        ),
        make_wheel(directory, "app", "1.0", requires=["native==2.0"]),
    ]


@pytest.fixture
def layer(tmp_path: Path, isolated_env: Path, index: IndexServer) -> Path:
    """A two-wheel layer with a current lock.json written without uv; the wheels on the index."""
    wheels = _wheels(tmp_path / "dists")
    index.add(*wheels)
    runtime = make_fake_runtime(tmp_path / "runtime")
    path = write_layer(tmp_path / "layer", "app==1.0\nnative==2.0\n", runtime=runtime)
    write_fixture_lock(path, runtime, wheels)
    return path


def _build(layer: Path, out: Path, *extra: str) -> int:
    return main(["build", "-q", "--layer", str(layer), "--out", str(out), *python_args(), *extra])


def test_build_writes_the_zip_report_and_deployment_files(layer: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    assert _build(layer, out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "testlayer.publish-layer-version.json",
        "testlayer.report.json",
        "testlayer.report.txt",
        "testlayer.sam.yaml",
        "testlayer.serverless.yml",
        "testlayer.zip",
    ]
    report = json.loads((out / "testlayer.report.json").read_text())
    assert report["bytecode"]["compiler"] == "compiler not pinned"  # --python
    with zipfile.ZipFile(out / "testlayer.zip") as archive:
        assert archive.testzip() is None
        assert f"{SITE}/native/__pycache__/__init__.cpython-311.pyc" in archive.namelist()


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
    (layer.parent / "native").mkdir()
    (layer.parent / "native" / "__init__.py").write_text("X = 2\n")
    layer.write_text(layer.read_text().replace('"mypkg"]', '"mypkg", "native"]'))
    assert _build(layer, tmp_path / "dist") == 2
    assert f"and native both install {SITE}/native/__init__.py" in capsys.readouterr().err


def test_missing_compiler_is_one_clear_line(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["build", "--layer", str(layer), "--out", str(tmp_path / "dist")]
    assert main([*command, "--python", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (
        f"error: --python {tmp_path / 'nope'}: expected CPython 3.11, found nothing that runs\n"
    )


def test_a_stale_lock_is_one_check_with_one_exit_code(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (layer.parent / "requirements.txt").write_text("app==1.0\nnative==2.1\n")
    assert _build(layer, tmp_path / "dist") == 1
    built = capsys.readouterr().err
    assert main(["lock", "--check", "--layer", str(layer)]) == 1
    checked = capsys.readouterr().err
    assert built == checked
    assert "is stale" in built and "native 2.0 -> 2.1" in built and built.count("\n") == 1


def test_unknown_package_in_prune_config(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer.write_text(layer.read_text() + '[prune.packages]\nnope = "all"\n')
    assert _build(layer, tmp_path / "dist") == 2
    assert "[prune.packages] nope: not a distribution of this layer" in capsys.readouterr().err


def test_a_goal_over_budget_warns_and_strict_fails_it(
    layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer.write_text(layer.read_text() + "[budgets]\nzip_bytes = 1000\n")
    assert _build(layer, tmp_path / "dist") == 0
    err = capsys.readouterr().err
    assert "warning: zipped " in err and "the layer's goal 1,000" in err
    assert _build(layer, tmp_path / "dist", "--strict") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: over budget: zipped ")
    assert "wrote testlayer.over-limit.zip and testlayer.over-limit.report.json" in err
    # `report` and `diff` work on the zip that was not deployed
    assert main(["report", str(tmp_path / "dist" / "testlayer.over-limit.zip")]) == 0


@pytest.mark.slow  # uv
def test_from_requirements_to_a_zip(index: IndexServer, tmp_path: Path, isolated_env: Path) -> None:
    index.add(*_wheels(tmp_path / "more"))
    runtime = make_fake_runtime(tmp_path / "rt")
    path = write_layer(tmp_path / "uv", "app==1.0\nnative==2.0\n", runtime=runtime)
    assert main(["lock", "-q", "--layer", str(path)]) == 0
    assert main(["lock", "-q", "--check", "--layer", str(path)]) == 0
    assert _build(path, tmp_path / "dist") == 0
    assert (tmp_path / "dist" / "testlayer.zip").is_file()
