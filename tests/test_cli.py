"""The command line as a user meets it: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from helpers import make_wheel, write_fixture_lock, write_layer
from pybuild.support.cache import default_cache_dir


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "pybuild", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("command", [[], ["lock"], ["fetch"]])
def test_help(command: list[str]) -> None:
    result = _run(*command, "--help")
    assert result.returncode == 0
    assert "usage: pybuild" in result.stdout
    if command:
        assert "--layer PATH" in result.stdout


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.startswith("pybuild ")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "pybuild"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "lock" in result.stdout


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "layer.toml"
    bad.write_text('name = "x"\n[target]\narch = 1\n')
    result = _run("lock", "--layer", str(bad))
    assert result.returncode == 2
    # several problems: a one-line summary, then one problem per line
    first, *problems = result.stderr.splitlines()
    assert first == f"error: {bad}: 5 problems"
    assert "  target.arch: expected a string, got int 1" in problems
    assert len(problems) == 5 and all(p.startswith("  ") and ": " in p for p in problems)
    assert "Traceback" not in result.stderr

    (tmp_path / "requirements.txt").write_text("pyyaml==6.0.3\n")
    bad.write_text(
        'name = "x"\nrequirements = "requirements.txt"\n'
        '[target]\narch = 1\nglibc = "2.34"\npython = "3.11"\n'
        '[runtime]\npython_version = "3.11.15"\nrelease = "20260414"\n'
        'flavor = "install_only_stripped"\n'
    )
    result = _run("lock", "--layer", str(bad))
    assert result.returncode == 2
    assert result.stderr == f"error: {bad}: target.arch: expected a string, got int 1\n"


def test_missing_layer_file(tmp_path: Path) -> None:
    result = _run("fetch", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: layer/layer.toml: no such file (pass --layer PATH)\n"


def test_usage_error_exit_code() -> None:
    result = _run("fetch", "--jobs", "0")
    assert result.returncode == 2
    assert "is not a positive integer" in result.stderr


def _files(root: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and link (its target) below `root`."""
    return {
        path.relative_to(root).as_posix(): (
            str(path.readlink()) if path.is_symlink() else path.read_bytes()
        )
        for path in sorted(root.rglob("*"))
        if path.is_symlink() or path.is_file()
    }


def _hostile(directory: Path, case: str) -> tuple[Path, str]:
    """A locked layer in `directory` made hostile by `case`: the --layer to pass and the
    error line expected (after ``error: ``, relative to `directory`)."""
    layer = write_layer(directory, "native==2.0\n")
    runtime = next((directory / "runtime").glob("*-aarch64-*"))
    write_fixture_lock(layer, runtime, [make_wheel(directory / "wheels", "native", "2.0")])
    lock, requirements = directory / "lock.json", directory / "requirements.txt"
    if case == "huge number":
        lock.write_text(lock.read_text().replace('"size": ', '"size": 1' + "0" * 5000, 1))
        return layer, "lock.json: invalid JSON: a number of more than 4300 digits"
    if case == "deep array":
        lock.write_text("[" * 100_000)
        return layer, "lock.json: invalid JSON: nested too deeply"
    if case == "deep marker":
        nested = "(" * 3000 + "python_version>'3'" + ")" * 3000
        requirements.write_text(f"native==2.0 ; {nested}\n")
        return layer, "requirements.txt:1: invalid requirement: parentheses nested too deeply"
    if case == "link loop":
        (directory / "loop1").symlink_to("loop2")
        (directory / "loop2").symlink_to("loop1")
        return directory / "loop1", "loop1: cannot read: Too many levels of symbolic links"
    assert case == "endless requirements"
    layer.write_text(layer.read_text().replace('"requirements.txt"', '"/dev/zero"'))
    return layer, "/dev/zero: cannot read: not a regular file (a character device)"


@pytest.mark.timeout(60, method="signal")  # /dev/zero used to be read until memory ran out
@pytest.mark.parametrize(
    "case", ["huge number", "deep array", "deep marker", "link loop", "endless requirements"]
)
def test_hostile_inputs_of_lock_check_are_one_line(tmp_path: Path, case: str) -> None:
    layer, expected = _hostile(tmp_path, case)
    before = _files(tmp_path)
    result = _run("lock", "--check", "--layer", layer.name, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: {expected}\n")
    assert _files(tmp_path) == before


def _workflow_commands() -> list[tuple[str, list[str]]]:
    """Every `pybuild ...` command line the CI workflows run, split as the shell would."""
    import re
    import shlex

    found = []
    for workflow in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for line in workflow.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            for match in re.finditer(r"pybuild\"? ([a-z][^'|&;]*)", line):
                text = match.group(1).replace('"$(command -v python3.11)"', "python3.11")
                found.append((workflow.name, shlex.split(text)))
    return found


def test_workflows_run_commands_that_exist() -> None:
    """A renamed command, option or example layer breaks the workflows that run on machines
    with GitHub and Nix (and cannot run here): parse each of their command lines now."""
    from pybuild.cli import build_parser

    commands = _workflow_commands()
    assert {name for name, _ in commands} >= {"nix.yml", "reproducible.yml"}
    for name, words in commands:
        try:
            args = build_parser().parse_args(words)
        except SystemExit as err:  # argparse's way of refusing
            raise AssertionError(f"{name}: pybuild {' '.join(words)}") from err
        layer = getattr(args, "layer", None)
        if layer is not None:
            assert (REPO / layer).is_file(), f"{name}: no {layer}"


@pytest.mark.parametrize("command", ["build", "prune-plan"])
def test_sources_take_every_option(command: str, tmp_path: Path) -> None:
    """What `build` and `prune-plan` accept reaches `prepare` (a parsed option nobody reads is a
    lie in --help)."""
    from pybuild.cli import build_parser
    from pybuild.cli.commands import _sources

    args = build_parser().parse_args(
        [command, "--jobs", "2", "--offline", "--from", str(tmp_path), "--emulate-compiler"]
    )
    sources = _sources(args)
    assert (sources.jobs, sources.offline, sources.seed_dir) == (2, True, tmp_path)
    assert sources.emulate_compiler


def test_no_committed_file_holds_a_path_of_this_machine() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    machine = [str(REPO).encode(), str(default_cache_dir()).encode()]
    holding = [
        name.decode()
        for name in listed
        if name and (REPO / name.decode()).is_file()
        if any(path in (REPO / name.decode()).read_bytes() for path in machine)
    ]
    assert holding == [], f"these files name {[p.decode() for p in machine]}"
