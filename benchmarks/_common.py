"""Shared by the benchmark scripts: the reference lock's wheels, and RESULTS.md sections."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from pybuild.model.lockfile import Lock, read_lock
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache, default_cache_dir, file_sha256
from pybuild.support.index import configured_indexes
from pybuild.ui import Ui

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def reference_lock() -> Lock:
    return read_lock(ROOT / "layer" / "lock.json")


def reference_wheels() -> list[Path]:
    """The reference closure's wheels, fetched into the cache (the runtime is not reachable)."""
    lock = reference_lock()
    wheels = [a for a in lock_artifacts(lock) if a.kind == "wheel"]
    cache = Cache(default_cache_dir())
    results = fetch_artifacts(wheels, cache, indexes=configured_indexes(), ui=Ui())
    return [r.path for r in results]


def extract_elf_members(wheels: list[Path], destination: Path) -> list[Path]:
    """Every ELF member of the wheels, written flat into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    out = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    if member.read(4) != b"\x7fELF":
                        continue
                target = destination / info.filename.replace("/", "__")
                target.write_bytes(archive.read(info))
                out.append(target)
    return sorted(out)


def write_section(name: str, markdown: str, data: dict[str, object]) -> None:
    """Replace this benchmark's section of RESULTS.md and write its JSON beside it."""
    (ROOT / "benchmarks" / f"{name}.json").write_text(
        json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = (
        RESULTS.read_text(encoding="utf-8")
        if RESULTS.exists()
        else (
            "# Benchmark results\n\nWritten by the scripts in `benchmarks/`; each section says how "
            "to re-run it. Numbers are measured, never typed in.\n"
        )
    )
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _m: block, text) if begin in text else f"{text.rstrip()}\n\n{block}\n"
    RESULTS.write_text(text, encoding="utf-8")


def standin_layer(directory: Path, ui: Ui | None = None) -> Path:
    """The reference layer with the Debian stand-in runtime, locked, in `directory`.

    Everything but the runtime comes from layer/layer.toml: requirements, prune rules, budgets,
    smoke commands. The target's glibc becomes 2.36 (the stand-in's Debian python needs
    GLIBC_2.35) with the debian12 system profile; the wheels locked for it are the same files
    as in layer/lock.json (checked by `check_same_wheels`).
    """
    from pybuild.runtimes.debian import build_standin_runtime

    ui = ui or Ui()
    runtime = build_standin_runtime(default_cache_dir(), ui)
    sha256, size = file_sha256(runtime)
    version = runtime.name.split("-")[1].split("+")[0]
    text = (ROOT / "layer" / "layer.toml").read_text(encoding="utf-8")
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            out.append(line)
            if section == "[runtime]":
                out += [
                    f'url = "{runtime.as_uri()}"',
                    f'sha256 = "{sha256}"',
                    f"size = {size}",
                    f'python_version = "{version}"',
                    'release = "20260101"',
                    'triple = "aarch64-unknown-linux-gnu"',
                    'flavor = "install_only"',
                ]
            continue
        if section == "[runtime]" and stripped and not stripped.startswith("#"):
            continue
        if stripped.startswith("requirements ="):
            out.append(f'requirements = "{ROOT / "requirements.txt"}"')
        elif stripped.startswith("glibc ="):
            out += ['glibc = "2.36"', 'profile = "debian12"']
        elif stripped.startswith(("scripts =", "site_packages =")):
            # paths relative to layer/layer.toml, made absolute
            out.append(re.sub(r'"([^"/][^"]*)"', lambda m: f'"{ROOT / "layer" / m[1]}"', line))
        else:
            out.append(line)
    directory.mkdir(parents=True, exist_ok=True)
    layer = directory / "layer.toml"
    layer.write_text("\n".join(out) + "\n", encoding="utf-8")
    return layer


def check_same_wheels(standin_lock: Path) -> None:
    """The stand-in variant must install exactly the reference lock's wheels."""
    reference = {(w.filename, w.sha256) for w in reference_lock().wheels}
    variant = {(w.filename, w.sha256) for w in read_lock(standin_lock).wheels}
    if reference != variant:
        raise SystemExit(
            f"the stand-in layer's wheels differ from layer/lock.json: "
            f"{sorted(reference ^ variant)}"
        )
