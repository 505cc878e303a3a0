"""`pipeline.build` from fixture wheels and a PBS-shaped fixture runtime: no uv, no network.

The runtime's interpreter is a tiny aarch64 program and its stdlib the host's importlib (for the
magic number), so this interpreter compiles the bytecode (`--python`, "not pinned").
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from helpers import (
    FIXTURES,
    fixture_lock,
    host_compiler,
    make_fake_runtime,
    make_wheel,
    write_layer,
)
from pybuild.errors import CheckError, ConfigError
from pybuild.model.layerfile import load_layer
from pybuild.pipeline import BuildRequest, BuildResult, build
from pybuild.stages.archive import DEFAULT_EPOCH, zip_epoch
from pybuild.support.cache import Cache
from pybuild.support.tools import check_tools
from pybuild.ui import Ui

SITE = "python/lib/python3.11/site-packages"


def _wheels(directory: Path, extra_files: dict[str, bytes] | None = None) -> list[Path]:
    native = (FIXTURES / "good-aarch64.so").read_bytes()
    return [
        make_wheel(
            directory,
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/__init__.py": b"from native._speed import *  # noqa\n",
                "native/_speed.cpython-311-aarch64-linux-gnu.so": native,
                "native/tests/test_speed.py": b"def test():\n    assert True\n",
                **(extra_files or {}),
            },
        ),
        make_wheel(
            directory,
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
    ]


Builder = Callable[..., BuildResult]


@pytest.fixture
def builder(tmp_path: Path, isolated_env: Path) -> Builder:
    """Build a fixture layer; keyword arguments change the layer.toml, wheels or request."""

    def run(
        *,
        extra: str = "",
        wheels: list[Path] | None = None,
        runtime: Path | None = None,
        out: Path | None = None,
        glibc: str = "2.34",
        **request: Any,
    ) -> BuildResult:
        runtime = runtime or make_fake_runtime(tmp_path / "runtime")
        layer_path = write_layer(
            tmp_path / "layer",
            "app==1.0\nnative==2.0\n",
            runtime=runtime,
            glibc=glibc,
            extra='[prune.packages]\napp = ["app/ui/**"]\n' + extra,
        )
        layer = load_layer(layer_path)
        lock, files = fixture_lock(layer, runtime, wheels or _wheels(tmp_path / "dists"))
        settings: dict[str, Any] = {
            "layer": layer,
            "lock": lock,
            "files": files,
            "out_dir": out or tmp_path / "dist",
            "cache": Cache(isolated_env),
            "compiler": host_compiler(),
            "tools": check_tools(),
            "epoch": DEFAULT_EPOCH,
        }
        settings.update(request)
        return build(BuildRequest(**settings), Ui(quiet=True))

    return run


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_produces_a_lambda_layer(builder: Builder, tmp_path: Path) -> None:
    result = builder()
    out = tmp_path / "dist"
    archive = zipfile.ZipFile(out / "testlayer.zip")
    names = archive.namelist()
    assert names == sorted(names, key=lambda n: n.encode())
    assert "python/bin/python3.11" in names
    assert archive.getinfo("python/bin/python3.11").external_attr >> 16 == 0o100755
    # strip-nondeterminism's floor: the zip is a fixed point of it
    assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 12, 1, 0)}
    # Aliases are symlinks in PBS: left out (and reported), never duplicated.
    assert "python/bin/python3" not in names and "python/bin/python" not in names
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
    assert archive.read("python/bin/app").startswith(b"#!/opt/python/bin/python3.11\n")
    so = archive.read(f"{SITE}/native/_speed.cpython-311-aarch64-linux-gnu.so")
    assert len(so) < (FIXTURES / "good-aarch64.so").stat().st_size
    pyc = archive.read(f"{SITE}/app/__pycache__/__init__.cpython-311.pyc")
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked
    code = marshal.loads(pyc[16:])  # noqa: S302 - our own build output
    assert code.co_filename == f"/opt/{SITE}/app/__init__.py"
    assert "python/lib/python3.11/__pycache__/os.cpython-311.pyc" in names

    sbom = json.loads(archive.read("python/pybuild.cdx.json"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert {c["name"] for c in sbom["components"]} == {
        "cpython-3.11.15+20990101-aarch64-unknown-linux-gnu-install_only.tar.gz",
        "app",
        "native",
    }
    properties = {p["name"]: p["value"] for p in sbom["metadata"]["properties"]}
    assert properties["pybuild:bytecode_compiler_pinned"] == "compiler not pinned"
    assert "file:" not in json.dumps(sbom)  # content identity only: no URL of any input
    tools = {c["name"]: c["version"] for c in sbom["metadata"]["tools"]["components"]}
    assert tools["libdeflate"] == "1.26" and tools["deflate"] == "0.9.0"

    report = json.loads((out / "testlayer.report.json").read_text())
    assert report["zip"]["sha256"] == _sha256(out / "testlayer.zip") == result.archive.sha256
    assert report["zip"]["deployable"] is True
    rules = {r["rule"]: r for r in report["removed_by_rule"]}
    assert rules["shared libpython that no ELF file needs"]["files"] == 2  # .so.1.0 + link
    assert rules["layer.toml [prune.packages] app"]["files"] == 1
    assert {"link": "python/bin/python3", "target": "python3.11"} in report["symlinks_dropped"]
    assert [s["stage"] for s in report["stages"]] == ["assemble", "prune", "strip", "bytecode"]
    assert report["strip"][0]["bytes_after"] < report["strip"][0]["bytes_before"]
    assert report["bytecode"]["compiler_pinned"] is False
    # ranked by zipped bytes, the runtime's share given on its own
    zipped = [p["zipped_bytes"] for p in report["parts"]]
    assert zipped == sorted(zipped, reverse=True)
    assert report["runtime_share"]["owner"] == "runtime"
    largest = [f["zipped_bytes"] for f in report["largest_files"]]
    assert largest == sorted(largest, reverse=True)
    assert (out / "testlayer.report.txt").read_text().startswith("testlayer: testlayer.zip")
    assert "runtime: " in (out / "testlayer.report.txt").read_text()


def test_sbom_is_valid_cyclonedx(builder: Builder, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    builder()
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        document = archive.read("python/pybuild.cdx.json").decode()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    assert errors is None, errors


def test_creation_order_and_directory_do_not_matter(builder: Builder, tmp_path: Path) -> None:
    first = builder()
    second = builder(out=tmp_path / "elsewhere" / "out", reverse_order=True)
    assert first.archive.sha256 == second.archive.sha256
    assert first.report_path.read_bytes() == second.report_path.read_bytes()


def test_source_date_epoch_sets_every_timestamp(builder: Builder, tmp_path: Path) -> None:
    builder(epoch=zip_epoch("1700000001"))
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_verify_failure_is_a_summary_and_one_problem_per_line(
    builder: Builder, tmp_path: Path
) -> None:
    wheels = [
        make_wheel(
            tmp_path / "bad",
            "native",
            "2.0",
            "cp311-cp311-manylinux_2_17_aarch64",
            files={
                "native/_x.so": (FIXTURES / "good-x86_64.so").read_bytes(),
                "native/_y.so": (FIXTURES / "needs-glibc-2.38.so").read_bytes(),
            },
        ),
        _wheels(tmp_path / "dists")[1],
    ]
    with pytest.raises(CheckError) as raised:
        builder(wheels=wheels)
    assert str(raised.value) == "verify failed: 2 problems in 2 files"
    details = raised.value.details
    assert any(
        d.startswith(f"{SITE}/native/_x.so: architecture: expected aarch64") for d in details
    )
    assert any(d.startswith(f"{SITE}/native/_y.so: symbol version from libc.so.6") for d in details)
    assert not (tmp_path / "dist" / "testlayer.zip").exists()


def test_goal_is_reported_and_fails_only_when_strict(
    builder: Builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = builder()
    previous = (tmp_path / "dist" / "testlayer.zip").read_bytes()
    over = builder(extra="[budgets]\nzip_bytes = 1000\n")
    assert over.report.zip.deployable and over.archive.path.name == "testlayer.zip"
    goal = next(lim for lim in over.report.limits if lim.kind == "goal")
    assert goal.over and not goal.fails_build and goal.gap == 1000 - first.archive.size
    with pytest.raises(
        CheckError, match=r"over budget: zipped [\d,]+ bytes, the layer's goal 1,000"
    ):
        builder(extra="[budgets]\nzip_bytes = 1000\n", strict=True)
    out = tmp_path / "dist"
    # the failed build's zip and report, under a name no deployment file points at
    assert (out / "testlayer.over-limit.zip").is_file()
    report = json.loads((out / "testlayer.over-limit.report.json").read_text())
    assert report["zip"]["deployable"] is False
    assert report["zip"]["sha256"] == _sha256(out / "testlayer.over-limit.zip")
    # the last good zip stays what it was
    assert (out / "testlayer.zip").read_bytes() == previous


def test_lambda_limits_always_fail(
    builder: Builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pybuild.stages.budgets.LAMBDA_ZIP_LIMIT", 1000)
    with pytest.raises(CheckError, match=r"zipped [0-9,]+ bytes, Lambda's limit 1,000"):
        builder()
    assert (tmp_path / "dist" / "testlayer.over-limit.zip").is_file()
    assert not (tmp_path / "dist" / "testlayer.zip").exists()
    assert not (tmp_path / "dist" / "testlayer.publish-layer-version.json").exists()


def test_sourceless_bytecode_without_debug_ranges(builder: Builder, tmp_path: Path) -> None:
    builder(extra='[bytecode]\nmode = "sourceless"\ndebug_ranges = false\n')
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        names = set(archive.namelist())
        code = marshal.loads(archive.read(f"{SITE}/app/__init__.pyc")[16:])  # noqa: S302
    assert f"{SITE}/app/__init__.py" not in names and f"{SITE}/app/__init__.pyc" in names
    assert code.co_filename == f"/opt/{SITE}/app/__init__.pyc"
    positions = [p for p in code.co_positions() if p[2] is not None]
    assert positions == []  # no column tables


def test_include_the_layers_own_code(builder: Builder, tmp_path: Path) -> None:
    own = tmp_path / "layer" / "bridge"
    own.mkdir(parents=True)
    (own / "bridge.py").write_text("X = 1\n")
    builder(extra='[include]\nsite_packages = ["bridge/bridge.py"]\n')
    with zipfile.ZipFile(tmp_path / "dist" / "testlayer.zip") as archive:
        assert f"{SITE}/__pycache__/bridge.cpython-311.pyc" in archive.namelist()


def test_rule_files_apply_by_owner_and_name_only_known_owners(
    builder: Builder, tmp_path: Path
) -> None:
    rules = tmp_path / "layer" / "rules.toml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(
        '[[rules]]\nname = "the cli"\nowner = "app"\npaths = ["{site_packages}/app/cli.py"]\n'
    )
    result = builder(extra=f'[prune]\nrules = ["{rules.name}"]\n')
    removed = {r.path: r.rule for r in result.report.removed}
    assert removed[f"{SITE}/app/cli.py"] == "rules.toml: the cli"
    rules.write_text(rules.read_text().replace('owner = "app"', 'owner = "ap"'))
    with pytest.raises(ConfigError, match="owner 'ap' is none of any, wheels, runtime"):
        builder(extra=f'[prune]\nrules = ["{rules.name}"]\n')


def test_deployment_files_follow_the_profile(builder: Builder, tmp_path: Path) -> None:
    result = builder()
    assert result.deploy is not None
    publish = json.loads(result.deploy.publish.read_text())
    assert publish["CompatibleArchitectures"] == ["arm64"]
    assert publish["LayerName"] == "testlayer"
    assert result.archive.sha256[:16] in publish["Description"]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Counter[str]]:
    """Count walks of the build tree (os.walk under the cache) and ELF parses per file."""
    counts: Counter[str] = Counter()
    real_walk = os.walk

    def walk(top: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if "/build-" in str(top):
            counts["walk"] += 1
        return real_walk(top, *args, **kwargs)

    from pybuild.elf import reader
    from pybuild.stages import strip

    real_parse = reader.read_elf_bytes

    def parse(data: bytes, label: str) -> Any:
        counts["parse:" + label.removesuffix(" (stripped)")] += 1
        return real_parse(data, label)

    monkeypatch.setattr(os, "walk", walk)
    monkeypatch.setattr(reader, "read_elf_bytes", parse)
    monkeypatch.setattr(strip, "read_elf_bytes", parse)
    yield counts


def test_one_walk_and_at_most_two_parses_per_elf_file(
    builder: Builder, counted: Counter[str]
) -> None:
    result = builder()
    parses = {k: v for k, v in counted.items() if k.startswith("parse:")}
    assert counted["walk"] <= 2, counted
    assert parses and max(parses.values()) <= 2, parses
    # the interpreter, libpython (until pruned), the extension: each parsed once or twice
    assert f"parse:{SITE}/native/_speed.cpython-311-aarch64-linux-gnu.so" in parses
    assert result.elf_parses == sum(1 for k, v in parses.items() if v)


def test_sbom_names_content_only_and_every_pinned_compiler() -> None:
    """The SBOM names inputs by file name and sha256 (no URL, no mirror) and lists every compiler
    the lock pins, whichever ran: the same zip on every host."""
    from pybuild.model.lockfile import read_lock
    from pybuild.runtimes.compiler import Compiler
    from pybuild.stages.sbom import sbom

    lock = read_lock(REPO / "examples" / "debian12-arm64" / "lock.json")
    tools = check_tools()
    documents = [
        sbom(
            lock,
            compiler=Compiler((f"/anywhere/{how}/python3.11",), "3.11.2", pinned, how),
            tools=tools,
            options={},
            epoch=DEFAULT_EPOCH,
        )
        for how, pinned in (("native", lock.compiler(lock.target.arch)), ("emulated", lock.runtime))
    ]
    assert documents[0] == documents[1]
    document = documents[0]
    text = json.dumps(document)
    assert "debian.org" not in text and "/anywhere/" not in text
    purls = [c["purl"] for c in document["components"]]
    assert "pkg:deb/debian/python3.11-minimal@3.11.2-6%2Bdeb12u9?arch=arm64" in purls
    compilers = [
        c
        for c in document["metadata"]["tools"]["components"]
        if "bytecode compiler" in c.get("description", "")
    ]
    assert {c["description"].split(": ")[0] for c in compilers} == {
        "bytecode compiler for aarch64 build hosts",
        "bytecode compiler for x86_64 build hosts",
    }
