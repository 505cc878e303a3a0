from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REPO
from helpers import check_reads_only_regular_files
from pybuild.errors import ConfigError
from pybuild.model.layerfile import (
    MAX_EXTENDS_CHAIN,
    Budgets,
    DebianRuntime,
    PbsRuntime,
    Provider,
    load_layer,
)
from pybuild.model.target import Arch
from pybuild.model.versions import GlibcVersion
from pybuild.smoke.runner import command_label
from pybuild.support.fsutil import resolve_path

GOOD = """\
name = "demo"
requirements = "requirements.txt"
[target]
arch = "aarch64"
glibc = "2.34"
python = "3.11"
[runtime]
url = "https://example.invalid/cpython.tar.gz"
sha256 = "e244df64d3f281d2cf33f492499a33a1cf5d872936ffc402ece48b833819c2a7"
size = 31632848
python_version = "3.11.15"
release = "20260414"
triple = "aarch64-unknown-linux-gnu"
flavor = "install_only_stripped"
"""


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "layer.toml"
    path.write_text(text, encoding="utf-8")
    load_layer(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert not info.value.details or message.endswith(f": {len(info.value.details)} problems")
    return "\n".join((message, *info.value.details))


def test_reference_layer_is_valid() -> None:
    layer = load_layer(REPO / "layer" / "layer.toml")
    assert layer.target.arch is Arch.AARCH64
    assert layer.target.glibc == GlibcVersion(2, 34)
    assert layer.profile.name == "al2023"
    assert isinstance(layer.runtime, PbsRuntime) and layer.runtime.archive is not None
    assert layer.runtime.archive.sha256.startswith("e244df64")
    assert layer.runtime.archive.size == 31632848
    assert layer.runtime.archive.filename == (
        "cpython-3.11.15+20260414-aarch64-unknown-linux-gnu-install_only_stripped.tar.gz"
    )
    assert layer.options.budgets.zip_bytes == 25_000_000
    assert layer.options.budgets.strict is False  # a stand-in figure must not fail a real build
    assert layer.requirements == REPO / "layer" / ".." / "requirements.txt"
    assert layer.lock_path == REPO / "layer" / "lock.json"


def test_good_layer_parses(tmp_path: Path) -> None:
    _load(tmp_path, GOOD)


def test_runtime_url_without_sha256(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace('sha256 = "e244', 'x = "'))
    assert "runtime.sha256: missing (a URL must be pinned by its sha256)" in message
    assert "runtime.x: unknown key" in message


def test_malformed_toml(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD + "[target\n")
    assert "invalid TOML" in message and "layer.toml" in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            GOOD + "[budgets]\nzip_bytes = 1" + "0" * 5000 + "\n",
            "a number of more than 4300 digits",
        ),
        ("a = " + "[" * 100_000 + "\n", "nested too deeply"),
    ],
)
def test_a_file_no_parser_takes_is_one_line(tmp_path: Path, text: str, reason: str) -> None:
    assert _error(tmp_path, text) == f"{tmp_path / 'layer.toml'}: invalid TOML: {reason}"


def test_only_a_regular_file_of_sane_size_is_read(tmp_path: Path) -> None:
    check_reads_only_regular_files(tmp_path / "layer.toml", load_layer, ConfigError)


def test_a_loop_of_links_is_one_line(tmp_path: Path) -> None:
    # Python 3.11's Path.resolve raises RuntimeError on a loop: never reached
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    with pytest.raises(ConfigError) as info:
        load_layer(tmp_path / "loop1")
    assert (
        str(info.value) == f"{tmp_path / 'loop1'}: cannot read: Too many levels of symbolic links"
    )
    (tmp_path / "child.toml").write_text('extends = "loop1"\n')
    with pytest.raises(ConfigError, match=r"child\.toml: extends: .*loop1: no such file$"):
        load_layer(tmp_path / "child.toml")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        resolve_path(tmp_path / "loop1")


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    text = (
        GOOD.replace('arch = "aarch64"', 'arch = "arm"')
        .replace('glibc = "2.34"', 'glibc = "234"')
        .replace("size = 31632848", "size = true")
        .replace('name = "demo"', 'name = "demo layer"')
        .replace('flavor = "install_only_stripped"', 'flavor = "full"')
    )
    message = _error(tmp_path, text)
    assert "target.arch: 'arm' is not one of aarch64, x86_64" in message
    assert "target.glibc: '234' is not of the form '2.N'" in message
    assert "runtime.size: expected an integer, got bool True" in message
    assert "name: 'demo layer' is not a valid Lambda layer name" in message
    assert "runtime.flavor: 'full' is not one of" in message


def test_runtime_must_fit_target(tmp_path: Path) -> None:
    text = GOOD.replace('arch = "aarch64"', 'arch = "x86_64"').replace(
        'python = "3.11"', 'python = "3.12"'
    )
    message = _error(tmp_path, text)
    assert (
        "runtime.triple: 'aarch64-unknown-linux-gnu' does not match target.arch 'x86_64'" in message
    )
    assert "runtime.python_version: '3.11.15' does not match target.python '3.12'" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('sha256 = "e244', 'sha256 = "E244', "runtime.sha256: 'E244"),
        (
            'url = "https:',
            'url = "ftp:',
            "runtime.url: 'ftp://example.invalid/cpython.tar.gz': scheme",
        ),
        ("[target]", "[targets]", "target: missing"),
        ("size = 31632848", "size = 0", "runtime.size: 0 is not a positive number of bytes"),
        ('glibc = "2.34"', 'glibc = "2.12"', "older than any manylinux policy for aarch64"),
        ('release = "20260414"', 'release = "latest"', "runtime.release: 'latest' is not a PBS"),
        (
            'requirements = "requirements.txt"',
            "requirements = 3",
            "requirements: expected a string",
        ),
    ],
)
def test_bad_values(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert expected in _error(tmp_path, GOOD.replace(old, new))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_layer(tmp_path / "nope.toml")


def test_x86_64_target(tmp_path: Path) -> None:
    path = tmp_path / "layer.toml"
    path.write_text(
        GOOD.replace('arch = "aarch64"', 'arch = "x86_64"').replace(
            "aarch64-unknown", "x86_64-unknown"
        ),
        encoding="utf-8",
    )
    assert load_layer(path).target.arch is Arch.X86_64


def test_build_sections(tmp_path: Path) -> None:
    (tmp_path / "smoke.py").write_text("print(1)\n")
    path = tmp_path / "layer.toml"
    path.write_text(
        GOOD
        + """
[prune]
defaults = false
drop = ["python/lib/{python}/pydoc.py"]
keep = ["python/bin/**"]
[prune.packages]
big = "all"
small = ["small/tests/**"]
[bytecode]
mode = "sourceless"
debug_ranges = false
[archive]
compression_level = 9
symlinks = "store"
[budgets]
zip_bytes = 1000
[smoke]
commands = ["import sys"]
scripts = ["smoke.py"]
timeout = 30
[smoke.env]
A = "1"
[smoke.skip_imports]
gui = "needs a display"
"""
    )
    layer = load_layer(path)
    assert layer.prune.defaults is False
    assert dict(layer.prune.packages)["small"] == ("small/tests/**",)
    assert layer.options.bytecode == "sourceless" and layer.options.debug_ranges is False
    assert layer.options.compression_level == 9 and layer.options.symlinks == "store"
    assert layer.options.budgets == Budgets(zip_bytes=1000)
    assert layer.smoke.scripts == (tmp_path / "smoke.py",)
    assert layer.smoke.env == (("A", "1"),)
    assert layer.smoke.skip_imports == (("gui", "needs a display"),)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            '[prune.packages]\nbig = "some"\n',
            'prune.packages.big: expected an array of globs or "all"',
        ),
        ('[prune]\ndrop = ["../etc/**"]\n', "prune.drop: '../etc/**' must be a relative glob"),
        ("[prune]\ndrop = [1]\n", "prune.drop: expected an array of strings"),
        ('[bytecode]\nmode = "fast"\n', "bytecode.mode: 'fast' is not one of unchecked-hash"),
        ('[bytecode]\ndebug_ranges = "no"\n', "bytecode.debug_ranges: expected true or false"),
        (
            "[archive]\ncompression_level = 13\n",
            "archive.compression_level: 13 is not a libdeflate",
        ),
        ('[archive]\nsymlinks = "follow"\n', "archive.symlinks: 'follow' is not one of copy-small"),
        ("[budgets]\nzip_bytes = 60000000\n", "budgets.zip_bytes: 60000000 is not between 1 and"),
        ('[smoke]\nscripts = ["nope.py"]\n', "smoke.scripts: "),
        ("[smoke]\ntimeout = 0\n", "smoke.timeout: 0 is not a positive number of seconds"),
        ("[smoke]\ncommand = []\n", "smoke.command: unknown key"),
    ],
)
def test_bad_build_sections(tmp_path: Path, section: str, expected: str) -> None:
    assert expected in _error(tmp_path, GOOD + section)


def test_the_debian_example_extends_the_reference_layer() -> None:
    example = load_layer(REPO / "examples" / "debian12-arm64" / "layer.toml")
    reference = load_layer(REPO / "layer" / "layer.toml")
    assert example.name == "litellm-debian12"
    assert example.runtime == DebianRuntime(suite="bookworm")
    assert example.runtime.provider is Provider.DEBIAN
    assert example.profile.name == "debian12"
    assert str(example.target.glibc) == "2.36"
    # everything else is the reference layer's, paths resolved where they were written
    assert example.requirements.resolve() == reference.requirements.resolve()
    resolved = [p.resolve() for p in reference.prune.rules]
    assert [p.resolve() for p in example.prune.rules] == resolved
    assert replace(example.prune, rules=()) == replace(reference.prune, rules=())
    assert example.options.bytecode == reference.options.bytecode
    assert [p.resolve() for p in example.include] == [p.resolve() for p in reference.include]
    assert [p.resolve() for p in example.smoke.scripts] == [
        p.resolve() for p in reference.smoke.scripts
    ]
    assert example.lock_path == REPO / "examples" / "debian12-arm64" / "lock.json"


def test_extends_merges_tables_and_replaces_the_runtime(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "layer.toml").write_text(
        GOOD + '[bytecode]\nmode = "sourceless"\n[archive]\ncompression_level = 9\n'
    )
    child = tmp_path / "child" / "layer.toml"
    child.parent.mkdir()
    child.write_text(
        'extends = "../base/layer.toml"\nname = "child"\n[archive]\nsymlinks = "drop"\n'
        '[runtime]\nprovider = "debian"\nsuite = "bookworm"\n[target]\nglibc = "2.36"\n'
    )
    layer = load_layer(child)
    assert layer.name == "child"
    assert layer.options.bytecode == "sourceless"  # from the base
    assert layer.options.compression_level == 9 and layer.options.symlinks == "drop"
    assert layer.runtime == DebianRuntime(suite="bookworm")  # replaced whole, no url left over
    assert layer.profile.name == "debian12"
    assert layer.requirements.resolve() == (tmp_path / "base" / "requirements.txt").resolve()


def test_an_inherited_keyring_stays_relative_to_its_file(tmp_path: Path) -> None:
    (tmp_path / "base" / "keys").mkdir(parents=True)
    (tmp_path / "base" / "keys" / "archive.gpg").write_bytes(b"keyring")
    head, _, _ = GOOD.replace('glibc = "2.34"', 'glibc = "2.36"').partition("[runtime]")
    (tmp_path / "base" / "layer.toml").write_text(
        head + '[runtime]\nprovider = "debian"\nsuite = "bookworm"\nkeyring = "keys/archive.gpg"\n'
    )
    child = tmp_path / "child" / "layer.toml"
    child.parent.mkdir()
    child.write_text('extends = "../base/layer.toml"\nname = "child"\n')
    runtime = load_layer(child).runtime
    assert isinstance(runtime, DebianRuntime)
    assert runtime.keyring is not None
    assert runtime.keyring.resolve() == tmp_path / "base" / "keys" / "archive.gpg"


def test_extends_loops_and_missing_parents(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="extends itself"):
        load_layer(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "nope.toml"\n')
    with pytest.raises(ConfigError, match=r"extends: .*nope\.toml: no such file"):
        load_layer(tmp_path / "c.toml")


def _chain(tmp_path: Path, length: int) -> Path:
    """layer0.toml extends layer1.toml ... extends the last, GOOD; the first file's path."""
    tmp_path.mkdir()
    (tmp_path / f"layer{length - 1}.toml").write_text(GOOD)
    for i in range(length - 1):
        (tmp_path / f"layer{i}.toml").write_text(f'extends = "layer{i + 1}.toml"\n')
    return tmp_path / "layer0.toml"


def test_a_chain_of_extends_is_followed_in_a_loop_up_to_a_limit(tmp_path: Path) -> None:
    assert load_layer(_chain(tmp_path / "ok", MAX_EXTENDS_CHAIN)).name == "demo"
    with pytest.raises(ConfigError) as info:
        load_layer(_chain(tmp_path / "long", 1500))  # once a RecursionError
    assert str(info.value) == (
        f"{tmp_path / 'long' / 'layer0.toml'}: extends: a chain of more than 32 files "
        f"({tmp_path / 'long' / 'layer31.toml'} extends 'layer32.toml')"
    )


def test_tables_nested_deeper_than_python_recurses_merge(tmp_path: Path) -> None:
    deep = ".".join(["a"] * 3000)  # dotted keys: tomllib nests them without recursing
    (tmp_path / "base.toml").write_text(f"{deep}.x = 1\n{GOOD}")
    (tmp_path / "child.toml").write_text(f'extends = "base.toml"\n{deep}.y = 2\n')
    assert _error(tmp_path, (tmp_path / "child.toml").read_text()) == (
        f"{tmp_path / 'layer.toml'}: a: unknown key"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'glibc = "2.34"',
            'glibc = "2.30"',
            "target.glibc: no system profile for glibc 2.30 (set target.profile, or use a glibc "
            "of: al2023 (glibc 2.34), al2 (glibc 2.26), debian12 (glibc 2.36))",
        ),
        (
            'python = "3.11"',
            'python = "3.11"\nprofile = "ubuntu"',
            "target.profile: unknown system profile 'ubuntu'; known: al2023",
        ),
        (
            'python = "3.11"',
            'python = "3.11"\nprofile = "al2"',
            "target.profile: profile al2 has glibc 2.26, not 2.34",
        ),
        ("[runtime]", '[runtime]\nprovider = "conda"', "runtime.provider: 'conda' is not one of"),
    ],
)
def test_unknown_profiles_and_providers_are_refused_at_load(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert expected in _error(tmp_path, GOOD.replace(old, new, 1))


def test_debian_runtime_keys(tmp_path: Path) -> None:
    text = GOOD.split("[runtime]", maxsplit=1)[0].replace('glibc = "2.34"', 'glibc = "2.36"')
    message = _error(tmp_path, text + '[runtime]\nprovider = "debian"\nrelease = "x"\n')
    assert "runtime.suite: missing" in message and "runtime.release: unknown key" in message
    layer_path = tmp_path / "layer.toml"
    layer_path.write_text(
        text + '[runtime]\nprovider = "debian"\nsuite = "bookworm"\n'
        '[runtime.mirrors]\ndebian = "https://mirror.example/debian"\n'
    )
    assert load_layer(layer_path).runtime == DebianRuntime(
        suite="bookworm", mirrors=(("debian", "https://mirror.example/debian"),)
    )


def test_smoke_command_labels_keep_snippets_that_start_alike_apart() -> None:
    assert command_label("import litellm") == "import litellm"
    assert command_label("\nimport litellm\nassert litellm\n\n") == "import litellm (2 lines)"
    assert command_label("x = '" + "a" * 80 + "'") == "x = '" + "a" * 52 + "..."
    assert command_label("  \n") == "(empty)"


def test_the_quick_starts_layer_file_is_valid(tmp_path: Path) -> None:
    text = (REPO / "docs" / "quickstart.md").read_text()
    starter = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "requirements.txt").write_text("pyyaml==6.0.3\n")
    (tmp_path / "layer.toml").write_text(starter)
    layer = load_layer(tmp_path / "layer.toml")
    assert isinstance(layer.runtime, PbsRuntime) and layer.runtime.archive is None
    assert layer.smoke.commands == ("import yaml",)
