from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from pybuild.errors import LockError
from pybuild.model.lockfile import Lock, dumps_stable, read_lock


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
    assert lock.runtime.sha256 == (
        "e244df64d3f281d2cf33f492499a33a1cf5d872936ffc402ece48b833819c2a7"
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
        (lambda d: d["runtime"].pop("sha256"), "runtime.sha256: missing"),
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


def test_unreadable_lock(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="run `pybuild lock` first"):
        read_lock(tmp_path / "lock.json")
    (tmp_path / "lock.json").write_text("{", encoding="utf-8")
    with pytest.raises(LockError, match="invalid JSON"):
        read_lock(tmp_path / "lock.json")
