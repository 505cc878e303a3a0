"""Shared by the benchmark scripts: the reference lock's wheels, and RESULTS.md sections."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from pybuild.model.lockfile import Lock, read_lock
from pybuild.stages.fetch import fetch_artifacts, lock_artifacts
from pybuild.support.cache import Cache, default_cache_dir
from pybuild.support.index import configured_indexes
from pybuild.ui import Ui

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# The reference layer with Debian's Python: what can be built here (no GitHub, so no PBS).
DEBIAN_EXAMPLE = ROOT / "examples" / "debian12-arm64" / "layer.toml"


def scrub(text: str) -> str:
    """`text` without paths of this machine (the cache, the home directory, temp dirs)."""
    import tempfile

    cache = str(default_cache_dir())
    text = text.replace(cache, "<cache>")
    text = text.replace(str(Path.home()), "~")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[^\s,)]*", "<tmp>", text).replace(
        str(Path.cwd()), "."
    )


def reference_lock() -> Lock:
    return read_lock(ROOT / "layer" / "lock.json")


def reference_wheels() -> list[Path]:
    """The reference closure's wheels, fetched into the cache (the runtime is not reachable)."""
    lock = reference_lock()
    wheels = [a for a in lock_artifacts(lock, host=None, mirrors={}) if a.kind == "wheel"]
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
    """Replace this benchmark's section of RESULTS.md and write its JSON beside it, with no path
    of this machine in either (refused if one is left after scrubbing)."""
    markdown = scrub(markdown)
    encoded = scrub(json.dumps(data, indent=2, sort_keys=True) + "\n")
    for text in (markdown, encoded):
        for leak in ("/root/", "/home/", "/tmp/", str(default_cache_dir())):  # noqa: S108
            if leak in text:
                raise SystemExit(
                    f"benchmark {name}: a path of this machine ({leak}) in its results"
                )
    (ROOT / "benchmarks" / f"{name}.json").write_text(encoded, encoding="utf-8")
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
