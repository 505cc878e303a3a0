"""Warm rebuild before and after the restructuring (issue 10), same run, same machine.

"Before" is the revision that landed before it (BEFORE below), installed from `git archive`
into a scratch directory with its own pinned dependencies; it builds the reference layer on its
Debian 12 stand-in runtime (its `benchmarks/_common.py::standin_layer`, which needs apt lists
with arm64 enabled). "After" is this checkout building `examples/debian12-arm64`: the same
wheels, the same Debian python3.11 packages. Each side has a cache of its own, filled by one
cold build (timed); then the warm builds run interleaved, before/after, and the median is
reported.
Warm means every download and the compression cache are in place: what is left is the build's
own work (assemble, prune, strip, verify, compile, zip).

Re-run: `.venv/bin/python benchmarks/rebuild.py` (network: PyPI, Debian's archive).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEBIAN_EXAMPLE, ROOT, write_section

BEFORE = "cbe6e1e"  # main as the first round left it
RUNS = 5


def _run(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.monotonic()
    completed = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - start
    if completed.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:3])} failed ({completed.returncode}): "
            f"{completed.stderr.strip().splitlines()[-1:]}"
        )
    return elapsed


def _install_before(scratch: Path) -> tuple[Path, Path]:
    """The BEFORE revision unpacked in `scratch` and installed in a venv of its own."""
    source = scratch / "before"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BEFORE], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    venv = scratch / "before-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-e", str(source)],
        check=True,
        capture_output=True,
    )
    return source, venv / "bin" / "python"


def _before_layer(source: Path, python: Path, env: dict[str, str]) -> Path:
    """The BEFORE revision's stand-in layer.toml, written and locked by that revision."""
    layer_dir = source / "standin"
    script = (
        "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; "
        "from _common import standin_layer; print(standin_layer(Path(sys.argv[1])))"
    )
    completed = subprocess.run(
        [str(python), "-c", script, str(layer_dir)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"the stand-in layer of {BEFORE}: {completed.stderr.strip()[-400:]}")
    layer = Path(completed.stdout.strip().splitlines()[-1])
    _run([str(python), "-m", "pybuild", "lock", "--layer", str(layer)], env, source)
    return layer


def main() -> None:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYBUILD_")}
    with tempfile.TemporaryDirectory(prefix="pybuild-rebuild.") as tmp:
        scratch = Path(tmp)
        print(f"installing {BEFORE} into a scratch venv", file=sys.stderr)
        source, before_python = _install_before(scratch)
        before_env = {**base_env, "PYBUILD_CACHE_DIR": str(scratch / "cache-before")}
        after_env = {**base_env, "PYBUILD_CACHE_DIR": str(scratch / "cache-after")}
        before_layer = _before_layer(source, before_python, before_env)
        before = [
            str(before_python), "-m", "pybuild", "build", "--layer", str(before_layer),
            "--out", str(scratch / "out-before"), "--quiet",
        ]  # fmt: skip
        after = [
            sys.executable, "-m", "pybuild", "build", "--layer", str(DEBIAN_EXAMPLE),
            "--out", str(scratch / "out-after"), "--quiet",
        ]  # fmt: skip
        # The same layer without issue 14's docstring stripping (which "before" did not do): what
        # the restructuring alone costs or saves.
        plain_layer = scratch / "plain" / "layer.toml"
        plain_layer.parent.mkdir()
        plain_layer.write_text(
            f'extends = "{DEBIAN_EXAMPLE}"\n[bytecode]\nstrip_docstrings = []\n'
            "[budgets]\nzip_bytes = 52428800\n",
            encoding="utf-8",
        )
        shutil.copy(DEBIAN_EXAMPLE.parent / "lock.json", plain_layer.parent / "lock.json")
        plain = [*after[:5], str(plain_layer), "--out", str(scratch / "out-plain"), "--quiet"]
        print("cold builds, filling both caches", file=sys.stderr)
        cold_before = _run(before, before_env, source)
        cold_after = _run(after, after_env, ROOT)
        _run(plain, after_env, ROOT)
        times: dict[str, list[float]] = {"before": [], "after": [], "plain": []}
        for i in range(RUNS):
            print(f"warm rebuilds {i + 1}/{RUNS}", file=sys.stderr)
            times["before"].append(_run(before, before_env, source))
            times["after"].append(_run(after, after_env, ROOT))
            times["plain"].append(_run(plain, after_env, ROOT))
        docstring_bytes = sum(
            p.stat().st_size for p in (scratch / "out-plain").glob("*.zip")
        ) - sum(p.stat().st_size for p in (scratch / "out-after").glob("*.zip"))
        compiled = {
            side: json.loads(next(out.glob("*.report.json")).read_text())["bytecode"]["compiled"]
            for side, out in (("before", scratch / "out-before"), ("after", scratch / "out-after"))
        }
    med = {side: statistics.median(values) for side, values in times.items()}
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    data: dict[str, object] = {
        "before_revision": BEFORE,
        "runs": RUNS,
        "machine": machine,
        "cold_seconds": {"before": round(cold_before, 1), "after": round(cold_after, 1)},
        "warm_seconds": {side: [round(t, 2) for t in values] for side, values in times.items()},
        "warm_median_seconds": {side: round(value, 2) for side, value in med.items()},
        "modules_compiled": compiled,
        "docstring_bytes": docstring_bytes,
    }
    markdown = f"""
## Warm rebuild: before and after the restructuring

The reference closure on Debian 12's arm64 python3.11, built by `{BEFORE}` (main before issue
10, its stand-in runtime) and by this checkout (`examples/debian12-arm64`), each with a warm
cache of its own, {RUNS} interleaved runs, same machine ({machine}). Re-run:
`.venv/bin/python benchmarks/rebuild.py`.

| | warm rebuild (median) | runs | cold build (empty cache) |
|---|---:|---|---:|
| before ({BEFORE}) | {med["before"]:.1f} s | {", ".join(f"{t:.1f}" for t in times["before"])} | {cold_before:.1f} s |
| after | {med["after"]:.1f} s | {", ".join(f"{t:.1f}" for t in times["after"])} | {cold_after:.1f} s |
| after, no `strip_docstrings` | {med["plain"]:.1f} s | {", ".join(f"{t:.1f}" for t in times["plain"])} | |

Warm after/before: **{med["after"] / med["before"]:.2f}**; without issue 14's docstring
stripping ({docstring_bytes:,} bytes of the zip, paid for by parsing each of those modules to a syntax
tree before compiling it), **{med["plain"] / med["before"]:.2f}**. The cold build downloads every
input into an empty cache (PyPI and Debian's archive, so network-bound); "before"'s stand-in
runtime archive is made while setting up and is already in its cache; "after" downloads the
Debian packages and the pinned compiler's too. Modules compiled: {compiled["before"]:,}
before, {compiled["after"]:,} after. "After" compiles with the CPython the lock pins (Debian's
amd64 python3.11 of the runtime's version, unpacked once into the cache) where "before" used
the host's, and holds the tree as one inventory: the issue counted 13 tree walks and 4 LIEF
parses per ELF file before; `tests/test_pipeline.py` counts at most 2 of each after.
"""
    write_section("rebuild", markdown, data)
    print(markdown)


if __name__ == "__main__":
    main()
