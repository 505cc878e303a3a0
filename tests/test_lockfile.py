from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from helpers import check_reads_only_regular_files
from pybuild.errors import LockError
from pybuild.model.lockfile import Lock, read_lock
from pybuild.model.target import Arch
from pybuild.support.jsonout import dumps_stable


def _reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "layer" / "lock.json").read_text())
    return data


def test_reference_lock_round_trips_byte_for_byte() -> None:
    text = (REPO / "layer" / "lock.json").read_text()
    lock = read_lock(REPO / "layer" / "lock.json")
    assert lock.to_json() == text
    assert text.endswith("}\n") and '\n  "inputs"' in text  # 2-space indent, trailing newline


def test_reference_lock_pins_runtime_and_one_wheel_per_distribution() -> None:
    lock = read_lock(REPO / "layer" / "lock.json")
    (runtime,) = lock.runtime.files
    assert runtime.sha256 == "e244df64d3f281d2cf33f492499a33a1cf5d872936ffc402ece48b833819c2a7"
    # a bytecode compiler for each build host: the runtime itself on aarch64, the same CPython
    # and release for x86_64 (pbs-assets.json, cross-checked)
    assert lock.compiler(Arch.AARCH64) == lock.runtime
    x86 = lock.compiler(Arch.X86_64)
    assert x86 is not None and x86.python_version == lock.runtime.python_version == "3.11.15"
    assert x86.files[0].filename == (
        "cpython-3.11.15+20260414-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    )
    assert x86.files[0].sha256 == (
        "b702a19b26cbd007abf9ccbaa45dfdff99e9dbd646d89c9f3c9bb7b501aea44f"
    )
    names = [w.name for w in lock.wheels]
    assert len(names) == len(set(names))
    assert "litellm" in names
    for wheel in lock.wheels:
        assert wheel.filename.endswith(".whl")
        assert "x86_64" not in wheel.filename
    text = (REPO / "layer" / "lock.json").read_text()
    assert "pythonhosted" not in text and "pypi.org" not in text  # no index host in the lock


def test_key_order_does_not_matter_on_output() -> None:
    data = _reference()
    shuffled = dict(reversed(list(data.items())))
    shuffled["wheels"] = list(reversed(data["wheels"]))
    assert Lock.from_dict(shuffled, "x").to_json() == dumps_stable(data)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["wheels"][0].update(sha256="abc"), "x: wheels[0].sha256: 'abc' is not 64"),
        (
            lambda d: d["wheels"][1].update(size=-1),
            "x: wheels[1].size: expected a positive integer",
        ),
        (lambda d: d["wheels"][2].update(filename="nope.whl"), "x: wheels[2].filename:"),
        (lambda d: d["wheels"][2].update(version="0.0.1"), "is not a wheel of"),
        (lambda d: d["wheels"][0].update(color="red"), "x: wheels[0].color: unknown key"),
        (lambda d: d.update(version=99), "x: version: unsupported lock version 99"),
        (
            lambda d: d["runtime"]["files"][0].pop("sha256"),
            "x: runtime.files[0].sha256: expected a non-empty string",
        ),
        (
            lambda d: d["runtime"]["files"][0].pop("url"),
            "x: runtime.files[0]: needs exactly one of url and debian",
        ),
        (lambda d: d["runtime"].update(provider="conda"), "x: runtime.provider: 'conda' is not"),
        (lambda d: d["compilers"].update(arm={}), "x: compilers.arm: not an architecture"),
        (lambda d: d["target"].update(glibc="two"), "x: target.glibc: 'two' is not of the form"),
        (lambda d: d.update(wheels={}), "x: wheels: expected an array"),
        (lambda d: d["wheels"].append(dict(d["wheels"][0])), "is locked more than once"),
        (lambda d: d["inputs"].update(layer=""), "x: inputs.layer: expected a non-empty string"),
    ],
)
def test_invalid_lock_names_the_field(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(_reference())
    mutate(data)
    with pytest.raises(LockError) as info:
        Lock.from_dict(data, "x")
    assert expected in str(info.value)


@pytest.mark.parametrize("bad", ["../{}", "sub/{}", "\0{}", "{}\0", "..", "."])
def test_a_wheel_filename_is_one_path_segment(bad: str) -> None:
    # the name is a file of the cache and of a work directory, as a runtime file's name is:
    # refused as such, whatever packaging would make of it
    for field in ("wheels", "runtime"):
        data = copy.deepcopy(_reference())
        entry = data["wheels"][0] if field == "wheels" else data["runtime"]["files"][0]
        entry["filename"] = bad.format(entry["filename"])
        with pytest.raises(LockError) as info:
            Lock.from_dict(data, "x")
        path = "wheels[0]" if field == "wheels" else "runtime.files[0]"
        assert str(info.value) == f"x: {path}.filename: {entry['filename']!r} is not a file name"


def test_unreadable_lock(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="run `pybuild lock` first"):
        read_lock(tmp_path / "lock.json")
    (tmp_path / "lock.json").write_text("{", encoding="utf-8")
    with pytest.raises(LockError, match="invalid JSON"):
        read_lock(tmp_path / "lock.json")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"version": 2, "size": 1' + "0" * 5000 + "}", "a number of more than 4300 digits"),
        ("[" * 100_000, "nested too deeply"),
        ("\ufeff{", "Expecting property name"),  # a byte-order mark is dropped, as pip does
    ],
)
def test_a_lock_no_parser_takes_is_one_line(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "lock.json").write_text(text, encoding="utf-8")
    with pytest.raises(LockError) as info:
        read_lock(tmp_path / "lock.json")
    assert str(info.value).startswith(f"{tmp_path / 'lock.json'}: invalid JSON: {reason}")
    assert "\n" not in str(info.value)


def test_only_a_regular_lock_file_of_sane_size_is_read(tmp_path: Path) -> None:
    check_reads_only_regular_files(tmp_path / "lock.json", read_lock, LockError)


def test_the_debian_example_lock_pins_debian_packages() -> None:
    lock = read_lock(REPO / "examples" / "debian12-arm64" / "lock.json")
    assert all(f.debian is not None and f.url is None for f in lock.runtime.files)
    assert {f.debian.package for f in lock.runtime.files if f.debian} == {
        "python3.11-minimal",
        "libpython3.11-minimal",
        "libpython3.11-stdlib",
    }
    amd64 = lock.compiler(Arch.X86_64)
    assert amd64 is not None
    assert {f.debian.architecture for f in amd64.files if f.debian} == {"amd64"}
    assert lock.compiler(Arch.AARCH64) == lock.runtime
    text = (REPO / "examples" / "debian12-arm64" / "lock.json").read_text()
    assert "deb.debian.org" not in text  # pool paths only: any mirror serves them
