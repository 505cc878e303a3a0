"""`pybuild smoke` on real layers: real wheels from the index, Debian's arm64 python3.11 as the
runtime (the Debian provider), qemu-aarch64-static with a Debian sysroot, the layer at /opt (as
root) or relocated."""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pybuild.cli import main
from pybuild.model.target import Arch
from pybuild.smoke.runner import SmokeResult, SmokeSpec, smoke_zip
from pybuild.support.cache import default_cache_dir
from pybuild.ui import Ui

pytestmark = [pytest.mark.slow, pytest.mark.network]
SITE = "python/lib/python3/dist-packages"  # where Debian's python looks (the Debian provider)
REQUIREMENTS = "markupsafe==3.0.4\npyyaml==6.0.4\nsix==1.17.0\nidna==3.20\n"


@dataclass(frozen=True)
class Built:
    layer: Path
    zip: Path
    sysroot: Path


def _require_qemu() -> None:
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A small real layer (wheels with and without C extensions), built once for the module."""
    _require_qemu()
    from pybuild.smoke.sysroot import build_sysroot

    sysroot = build_sysroot(default_cache_dir(), Ui(quiet=True))
    root = tmp_path_factory.mktemp("smoke")
    (root / "requirements.txt").write_text(REQUIREMENTS)
    layer = root / "layer.toml"
    layer.write_text("""
name = "small"
requirements = "requirements.txt"
[target]
arch = "aarch64"
glibc = "2.36"
python = "3.11"
profile = "debian12"
[runtime]
provider = "debian"
suite = "bookworm"
[smoke]
commands = ["import yaml, markupsafe; assert yaml.__with_libyaml__; print(markupsafe.escape('<'))"]
[smoke.env]
SMOKE_MARKER = "set-by-layer"
""")
    assert main(["lock", "-q", "--layer", str(layer)]) == 0
    assert main(["build", "-q", "--layer", str(layer), "--out", str(root / "dist")]) == 0
    yield Built(layer, root / "dist" / "small.zip", sysroot)


def _spec(built: Built, **overrides: object) -> SmokeSpec:
    values: dict[str, object] = {
        "arch": Arch.AARCH64,
        "python": "python3.11",
        "site_packages": SITE,
        "sysroot": built.sysroot,
        "timeout": 300,
    }
    values.update(overrides)
    return SmokeSpec(**values)  # type: ignore[arg-type]


def _edit(
    source: Path,
    target: Path,
    *,
    add: dict[str, bytes] | None = None,
    drop: set[str] | None = None,
    replace: dict[str, bytes] | None = None,
) -> Path:
    """A copy of a layer zip with members added, dropped or replaced (modes kept)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in (drop or set()):
                continue
            data = (replace or {}).get(info.filename, src.read(info))
            dst.writestr(info, data)
        for name, data in (add or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            dst.writestr(info, data)
    return target


def _smoke(zip_path: Path, spec: SmokeSpec) -> SmokeResult:
    return smoke_zip(zip_path, spec, default_cache_dir() / "tmp")


def _failed(result: object) -> dict[str, str]:
    return {c.name: c.detail for c in result.checks if not c.ok}  # type: ignore[attr-defined]


def test_green_layer(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["smoke", str(built.zip), "--layer", str(built.layer), "--sysroot", str(built.sysroot)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"PASS  all \d+ top-level modules import", out), out
    assert "PASS  smoke: import yaml, markupsafe" in out
    assert "PASS  no bytecode compiled or written at run time" in out
    if os.geteuid() == 0:
        assert "layer at /opt (read-only bind mount" in out


def test_lambda_environment_only(built: Built) -> None:
    probe = (
        "import os, sys; assert os.environ['SMOKE_MARKER'] == 'set-by-layer'; "
        "assert 'PYTHONPATH' not in os.environ and 'HOME' not in os.environ; "
        "assert sys.prefix.endswith('python'), sys.prefix"
    )
    result = _smoke(
        built.zip, _spec(built, commands=(("env", probe),), env={"SMOKE_MARKER": "set-by-layer"})
    )
    assert result.ok, _failed(result)


def test_relocated(built: Built) -> None:
    result = _smoke(built.zip, _spec(built, at_opt=False))
    assert result.ok, _failed(result)
    assert "relocated" in result.how


def test_missing_dependency_and_module_raising_at_import(built: Built, tmp_path: Path) -> None:
    broken = _edit(
        built.zip,
        tmp_path / "broken.zip",
        add={
            f"{SITE}/needsdep/__init__.py": b"import notinstalled\n",
            f"{SITE}/raiser.py": b"raise RuntimeError('boom at import')\n",
        },
    )
    failed = _failed(_smoke(broken, _spec(built)))
    imports = next(detail for name, detail in failed.items() if "modules import" in name)
    assert "needsdep: ModuleNotFoundError: No module named 'notinstalled'" in imports
    assert "raiser: RuntimeError: boom at import" in imports
    # The two sources have no .pyc: compiling them at run time is reported too.
    stale = failed["no bytecode compiled or written at run time"]
    assert f"{SITE}/needsdep/__init__.py" in stale and f"{SITE}/raiser.py" in stale


def test_module_that_kills_the_interpreter_is_named(built: Built, tmp_path: Path) -> None:
    """An import that ends the process (a crash in native code, os._exit) takes the whole import
    check down with it; the check retries module by module and names the killer, with the last
    line it printed."""
    broken = _edit(
        built.zip,
        tmp_path / "killer.zip",
        add={f"{SITE}/killer.py": b"print('dying now', flush=True)\nimport os\nos._exit(3)\n"},
    )
    failed = _failed(_smoke(broken, _spec(built)))
    imports = next(detail for name, detail in failed.items() if "modules import" in name)
    assert imports == "killer: dying now", imports


def test_missing_pyc_is_a_run_time_compile(built: Built, tmp_path: Path) -> None:
    pyc = f"{SITE}/__pycache__/six.cpython-311.pyc"
    with zipfile.ZipFile(built.zip) as archive:
        assert pyc in archive.namelist()
    broken = _edit(built.zip, tmp_path / "nopyc.zip", drop={pyc})
    failed = _failed(_smoke(broken, _spec(built)))
    assert list(failed) == ["no bytecode compiled or written at run time"]
    assert (
        f"compiled from source at run time: {SITE}/six.py"
        in failed["no bytecode compiled or written at run time"]
    )


def test_foreign_interpreter(built: Built, tmp_path: Path) -> None:
    x86 = Path("/bin/true").read_bytes()  # an x86_64 executable on this machine
    broken = _edit(built.zip, tmp_path / "x86.zip", replace={"python/bin/python3.11": x86})
    result = _smoke(broken, _spec(built))
    assert [c.name for c in result.checks] == ["the interpreter starts with Lambda's environment"]
    assert not result.ok


def test_failing_command_shows_its_output(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _smoke(
        built.zip,
        _spec(
            built,
            commands=(
                ("fails", "print('before the failure')\nimport yaml\nyaml.safe_load('[unclosed')"),
            ),
        ),
    )
    detail = _failed(result)["smoke: fails"]
    assert "before the failure" in detail and "yaml.parser.ParserError" in detail


def test_trace(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.json"
    assert (
        main(
            [
                "smoke",
                str(built.zip),
                "--layer",
                str(built.layer),
                "--sysroot",
                str(built.sysroot),
                "--trace",
                str(trace),
            ]
        )
        == 0
    )
    data = json.loads(trace.read_text())
    assert f"{SITE}/yaml/__init__.py" in data["loaded"]
    assert any(p.startswith(f"{SITE}/yaml/_yaml.cpython-311") for p in data["loaded"])
    assert "python/bin/python3.11" in data["loaded"]
    never = {s["path"] for s in data["never_loaded"]}
    assert f"{SITE}/idna" in never  # the command imports yaml and markupsafe only
    assert "largest subtrees never loaded" in capsys.readouterr().out


def test_missing_zip_and_foreign_host_errors(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["smoke", str(tmp_path / "nope.zip"), "--layer", str(built.layer)]) == 2
    assert "no such file" in capsys.readouterr().err
