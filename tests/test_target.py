from __future__ import annotations

import pytest
from packaging.tags import Tag

from pybuild.model.target import Arch, Target
from pybuild.model.versions import GlibcVersion, PythonVersion


def _target(arch: Arch = Arch.AARCH64, glibc: tuple[int, int] = (2, 34)) -> Target:
    return Target(arch=arch, glibc=GlibcVersion(*glibc), python=PythonVersion(3, 11))


def test_versions_are_ordered_values() -> None:
    assert GlibcVersion.parse("2.34") < GlibcVersion.parse("2.36") < GlibcVersion(3, 0)
    assert str(GlibcVersion(2, 26)) == "2.26"
    python = PythonVersion.parse("3.11")
    assert (python.tag, python.executable, str(python)) == ("cp311", "python3.11", "3.11")
    assert python.matches("3.11.15") and not python.matches("3.1.15")
    assert PythonVersion.of("3.12.4") == PythonVersion(3, 12)
    for bad, kind in (("2.x", GlibcVersion), ("3.11", GlibcVersion), ("311", PythonVersion)):
        with pytest.raises(ValueError, match=r"is not of the form|has major version"):
            kind.parse(bad)


def test_platform_tags_newest_first_with_legacy_alias() -> None:
    tags = _target().platform_tags()
    assert tags[0] == "manylinux_2_34_aarch64"
    assert "manylinux_2_35_aarch64" not in tags
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert all(t.endswith("_aarch64") for t in tags)


def test_x86_64_goes_down_to_manylinux1() -> None:
    tags = _target(Arch.X86_64, (2, 26)).platform_tags()
    assert tags[0] == "manylinux_2_26_x86_64"
    assert "manylinux2010_x86_64" in tags
    assert tags[-1] == "manylinux1_x86_64"


def test_wheel_tag_order_prefers_exact_abi_then_abi3_then_pure() -> None:
    tags = _target().wheel_tags()
    position = {tag: i for i, tag in enumerate(tags)}
    exact = position[Tag("cp311", "cp311", "manylinux_2_34_aarch64")]
    abi3 = position[Tag("cp311", "abi3", "manylinux_2_17_aarch64")]
    old_abi3 = position[Tag("cp37", "abi3", "manylinux_2_28_aarch64")]
    pure = position[Tag("py3", "none", "any")]
    assert exact == 0
    assert exact < abi3 < old_abi3 < pure
    assert Tag("cp312", "cp312", "manylinux_2_17_aarch64") not in position
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") not in position
    assert Tag("cp311", "cp311", "musllinux_1_2_aarch64") not in position


def test_uv_platform_picks_newest_level_within_ceiling() -> None:
    assert _target().uv_python_platform() == "aarch64-manylinux_2_34"
    # uv has nothing between 2_17 and 2_28: Amazon Linux 2 resolves at 2_17.
    assert _target(glibc=(2, 26)).uv_python_platform() == "aarch64-manylinux_2_17"
    assert _target(Arch.X86_64, (2, 30)).uv_python_platform() == "x86_64-manylinux_2_28"
