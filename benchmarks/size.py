"""The reference layer's size, measure by measure (issue 14), and the real runtime's estimate.

Run: .venv/bin/python benchmarks/size.py [--runs N]     (needs qemu-user-static; the network
unless the cache holds the inputs)

Every row is the reference layer with Debian's Python (examples/debian12-arm64), built in this
run, on this machine:

- before: pybuild and the layer as they were before issue 14 (commit `BEFORE`, exported with
  `git archive` and run from there);
- then today's pybuild with the measures switched on one at a time, through a layer.toml that
  extends the example: the new prune rules for files nothing loads (type stubs, Cython and C
  sources, litellm's READMEs, multidict's headers), the generated standard-library rules
  (layer/prune-stdlib.toml), the runtime's docstrings, the distributions' docstrings; the last
  row is the example itself, and its zip must have the same sha256 when the bytecode is compiled
  by the target runtime under qemu (`--emulate-compiler`) as by the native pinned compiler.

`import litellm` is timed before and after (median of N interleaved runs under qemu): stripped
docstrings must not cost start-up time. The section ends with the estimate for the real runtime
(python-build-standalone, which cannot be downloaded here), from the numbers measured above and
the sizes PBS's own issues report. Results go to benchmarks/RESULTS.md and benchmarks/size.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import DEBIAN_EXAMPLE, ROOT, write_section
from pybuild.model.layerfile import load_layer
from pybuild.model.target import Arch
from pybuild.runtimes.debian import DebianProvider
from pybuild.smoke.runner import Runner, SmokeSpec
from pybuild.smoke.sysroot import build_sysroot
from pybuild.support.cache import default_cache_dir
from pybuild.support.extract import TreeWriter, extract_zip
from pybuild.ui import Ui

BEFORE = "4290151"  # main before issue 14's size work
IMPORT = "import litellm"
STDLIB = "python/lib/python3.11/"
# python-build-standalone's interpreter links libpython statically since release 20250517
# (pybuild's FACTS); its stripped libpython for 3.11 is 24.4 MB (PBS issue #275, x86_64), the
# issue cites about 24 MB for the 3.11 interpreter (PBS issue #941, not read here).
PBS_INTERPRETER_BYTES = 24_000_000
ISSUE_ESTIMATE = (31, 33)  # MB zipped: the issue's estimate for the layer before its work
BINARY_BYTES = 1_000_000  # the binaries whose compression ratio stands in for PBS's


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def variant(work: Path, name: str, *, rules: bool, strip: Sequence[str]) -> Path:
    """A layer.toml extending the example, with or without its generated standard-library
    rules, stripping the docstrings of `strip`."""
    layer = load_layer(DEBIAN_EXAMPLE)
    directory = work / name
    directory.mkdir()
    shutil.copy(DEBIAN_EXAMPLE.parent / "lock.json", directory / "lock.json")
    kept_rules = [str(p) for p in layer.prune.rules] if rules else []
    (directory / "layer.toml").write_text(
        f"extends = {json.dumps(str(DEBIAN_EXAMPLE))}\n"
        f"[prune]\nrules = {_toml_list(kept_rules)}\n"
        f"[bytecode]\nstrip_docstrings = {_toml_list(strip)}\n",
        encoding="utf-8",
    )
    return directory / "layer.toml"


def build(
    command: list[str], out: Path, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    subprocess.run([*command, "--out", str(out)], check=True, cwd=cwd, env=env)
    report: dict[str, Any] = json.loads((out / "litellm-debian12.report.json").read_text())
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def before_build(work: Path) -> dict[str, Any]:
    """The layer as pybuild built it at `BEFORE`, by that pybuild."""
    source = work / "before-src"
    source.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", BEFORE], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(source, filter="data")
    env = {**os.environ, "PYTHONPATH": str(source)}
    layer = source / "examples" / "debian12-arm64" / "layer.toml"
    command = [sys.executable, "-m", "pybuild", "build", "-q", "--layer", str(layer)]
    return build(command, work / "before-out", cwd=source, env=env)


def runtime_split(zip_path: Path) -> dict[str, int]:
    """The runtime's zipped bytes: interpreter, standard-library bytecode, extension modules."""
    import zipfile

    split = {"interpreter": 0, "stdlib": 0, "lib-dynload": 0, "other": 0, "interpreter file": 0}
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            name = info.filename
            if name == "python/bin/python3.11":
                split["interpreter"] += info.compress_size
                split["interpreter file"] += info.file_size
            elif name.startswith(STDLIB + "lib-dynload/"):
                split["lib-dynload"] += info.compress_size
            elif name.startswith(STDLIB) and name.endswith(".pyc"):
                split["stdlib"] += info.compress_size
            elif name.startswith(STDLIB):
                split["other"] += info.compress_size
    return split


def import_times(zips: dict[str, Path], work: Path, runs: int, ui: Ui) -> dict[str, list[float]]:
    layer = load_layer(DEBIAN_EXAMPLE)
    spec = SmokeSpec(
        arch=Arch.AARCH64,
        python="python3.11",
        site_packages=DebianProvider().layout(layer.target).site_packages,
        sysroot=build_sysroot(default_cache_dir(), ui),
        env=dict(layer.smoke.env),
        timeout=1800,
    )
    runners = {}
    for name, path in zips.items():
        directory = work / f"{name}-opt"
        extract_zip(path, TreeWriter(directory, path.name))
        runners[name] = Runner(directory, spec)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in range(runs):
        for name, runner in runners.items():
            started = time.perf_counter()
            completed = runner.run(["-c", IMPORT])
            if completed.returncode != 0:
                raise SystemExit(f"{name}: import litellm failed: {completed.stderr[-2000:]}")
            times[name].append(round(time.perf_counter() - started, 2))
        ui.info(
            f"run {run + 1}/{runs}: " + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items())
        )
    return times


def doc_reads() -> dict[str, list[str]]:
    """Every read of __doc__ in the layer, by owner (`pybuild prune-plan --report`)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "plan.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pybuild",
                "prune-plan",
                "-q",
                "--check",
                "--layer",
                str(DEBIAN_EXAMPLE),
                "--report",
                str(report),
            ],
            check=True,
            cwd=ROOT,
        )
        reads: dict[str, list[str]] = json.loads(report.read_text())["doc_reads"]
    return reads


def build_steps(
    work: Path, distributions: int
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """The report of each step's build, and of the last one's with the emulated compiler."""
    pybuild = [sys.executable, "-m", "pybuild", "build", "-q"]
    steps: list[tuple[str, dict[str, Any]]] = [(f"before ({BEFORE})", before_build(work))]
    for name, label, rules, strip in (
        ("rules", "+ prune rules for stubs, C/Cython sources, READMEs, headers", False, []),
        ("stdlib", "+ generated standard-library rules", True, []),
        ("runtime", "+ docstrings: the runtime", True, ["runtime"]),
    ):
        layer = variant(work, name, rules=rules, strip=strip)
        steps.append((label, build([*pybuild, "--layer", str(layer)], work / f"{name}-out")))
    after = build([*pybuild, "--layer", str(DEBIAN_EXAMPLE)], work / "after-out")
    steps.append((f"+ docstrings: {distributions} distributions (the layer)", after))
    emulated = [*pybuild, "--emulate-compiler", "--layer", str(DEBIAN_EXAMPLE)]
    return steps, build(emulated, work / "emulated")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ui = Ui()
    example = load_layer(DEBIAN_EXAMPLE)
    distributions = [s for s in example.options.strip_docstrings if s != "runtime"]
    goal = example.options.budgets.zip_bytes or 0
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-size-") as tmp:
        work = Path(tmp)
        steps, emulated = build_steps(work, len(distributions))
        before, after = steps[0][1], steps[-1][1]
        zips = {
            "before": work / "before-out" / "litellm-debian12.zip",
            "after": work / "after-out" / "litellm-debian12.zip",
        }
        split = {name: runtime_split(path) for name, path in zips.items()}
        times = import_times(zips, work, args.runs, ui)
    reads = doc_reads()

    def parts(report: dict[str, Any]) -> dict[str, int]:
        return {p["owner"]: p["zipped_bytes"] for p in report["parts"]}

    size_before, size_after = before["zip"]["bytes"], after["zip"]["bytes"]
    rows = []
    previous = size_before
    for label, report in steps:
        size = report["zip"]["bytes"]
        rows.append(f"| {label} | {size:,} | {previous - size:,} | {report['zip']['entries']:,} |")
        previous = size
    owners_before, owners_after = parts(before), parts(after)
    owners = sorted(
        set(owners_before) | set(owners_after),
        key=lambda o: owners_before.get(o, 0) - owners_after.get(o, 0),
        reverse=True,
    )
    owner_rows = [
        f"| {o} | {owners_before.get(o, 0):,} | {owners_after.get(o, 0):,} | "
        f"{owners_before.get(o, 0) - owners_after.get(o, 0):,} |"
        for o in owners
        if o != "(directories)"
    ]
    split_rows = [
        f"| {k} | {split['before'][k]:,} | {split['after'][k]:,} | "
        f"{split['before'][k] - split['after'][k]:,} |"
        for k in split["before"]
        if k != "interpreter file"
    ]
    median = {name: statistics.median(t) for name, t in times.items()}
    overlap = min(times["after"]) <= max(times["before"]) and min(times["before"]) <= max(
        times["after"]
    )
    spread = (
        "neither shows beyond the spread of the runs"
        if overlap
        else "the two sets of runs do not overlap"
    )
    same = emulated["zip"]["sha256"] == after["zip"]["sha256"]
    interpreter = split["after"]["interpreter"]
    interpreter_file = split["after"]["interpreter file"]
    # how this layer's large binaries zip (libdeflate 12): the range PBS's interpreter is put in
    binaries = {
        f["path"].rsplit("/", 1)[-1]: round(f["zipped_bytes"] / f["bytes"], 2)
        for f in after["largest_files"]
        if f["bytes"] >= BINARY_BYTES and (f["path"].endswith(".so") or "/bin/" in f["path"])
    }
    ratios = (min(binaries.values()), max(binaries.values()))
    measured_ratios = ", ".join(f"`{name}` {ratio}" for name, ratio in sorted(binaries.items()))

    def estimate(size: int, runtime: dict[str, int]) -> tuple[int, int]:
        """(low, high): Debian's interpreter out, PBS's in at the ratios below; at the low end
        Debian's lib-dynload out too (PBS builds its extension modules into the interpreter)."""
        base = size - runtime["interpreter"]
        return (
            base - runtime["lib-dynload"] + round(PBS_INTERPRETER_BYTES * ratios[0]),
            base + round(PBS_INTERPRETER_BYTES * ratios[1]),
        )

    low, high = estimate(size_after, split["after"])
    base_before = size_before - split["before"]["interpreter"]
    implied = tuple((mb * 1e6 - base_before) / PBS_INTERPRETER_BYTES for mb in ISSUE_ESTIMATE)
    low_before, high_before = estimate(size_before, split["before"])
    read_rows = [f"| {owner} | {len(sites)} |" for owner, sites in reads.items()]
    data: dict[str, object] = {
        "before_commit": BEFORE,
        "steps": [
            {"step": label, "zip_bytes": r["zip"]["bytes"], "entries": r["zip"]["entries"]}
            for label, r in steps
        ],
        "owners_before": owners_before,
        "owners_after": owners_after,
        "runtime_before": split["before"],
        "runtime_after": split["after"],
        "import_seconds": times,
        "emulated_sha256": emulated["zip"]["sha256"],
        "native_sha256": after["zip"]["sha256"],
        "doc_reads": reads,
        "goal": goal,
        "pbs_ratios": binaries,
        "pbs_estimate_bytes": [low, high],
        "pbs_estimate_before_bytes": [low_before, high_before],
    }
    markdown = f"""
## Size

The reference layer with Debian's Python (`examples/debian12-arm64`), built step by step in one
run on this machine: first by pybuild as it was before issue 14 (commit `{BEFORE}`), then with
each measure switched on in turn; the last row is the committed layer. Re-run:
`.venv/bin/python benchmarks/size.py`.

| step | zipped bytes | saved | zip entries |
|---|---:|---:|---:|
{chr(10).join(rows)}

- **{size_before:,} -> {size_after:,} bytes** ({size_before - size_after:,} saved); the goal,
  {goal:,}: {"met" if size_after <= goal else "NOT met"}. CI builds this layer with `--strict`
  (`tests/test_size.py`), so a zip over the goal fails.
- The same zip with the bytecode compiled by the target runtime under qemu
  (`--emulate-compiler`) as by the native pinned compiler: {"yes" if same else "NO"}
  (sha256 `{after["zip"]["sha256"][:16]}...`).
- `import litellm` under qemu, median of {args.runs} interleaved runs: before
  {median["before"]:.2f} s, after {median["after"]:.2f} s (runs: {times["before"]} and
  {times["after"]}). Without docstrings there is less to read and unmarshal, and a little to
  compute (`dataclasses` writes a docstring for a class that has none): {spread}.

Per distribution and for the runtime (zipped bytes, largest saving first):

| part | before | after | saved |
|---|---:|---:|---:|
{chr(10).join(owner_rows)}

The runtime's share:

| runtime | before | after | saved |
|---|---:|---:|---:|
{chr(10).join(split_rows)}

### What each measure removes, and the evidence

- **Files nothing loads**: type stubs and `py.typed` (read by type checkers; the import system
  never loads a `.pyi`) and the Cython and C sources of extension modules (only a compiler
  reads them), in pybuild's default profile for every layer; litellm's package READMEs (no code
  of litellm names a `.md` file) and multidict's C API headers (for compiling other extensions
  against it), in `layer/layer.toml`.
- **Standard-library modules no import reaches**: `layer/prune-stdlib.toml`, written by
  `pybuild prune-plan` from the layer's import graph (read by the pinned CPython, so the
  runtime's grammar; roots: every module in site-packages, the interpreter's start-up modules,
  `[prune] keep`, the smoke trace), one glob per line with the modules it removes; its header
  lists the imports by computed names it could not follow. `pybuild prune-plan --check` (in
  `tests/test_size.py`) fails when it is stale. The smoke suite passes on the pruned layer
  (`http.server` and `socketserver` stay only because the smoke scripts' loopback servers use
  them: the trace saw them, the file records it). `netrc` stays (httpx imports it).
- **Docstrings**: `[bytecode] strip_docstrings` compiles the runtime and every distribution
  without docstrings (line numbers and asserts kept; not `-OO`). Every read of `__doc__` in the
  layer, by owner (`pybuild prune-plan --report`; the sites are in `benchmarks/size.json`):

| owner | reads of `__doc__` |
|---|---:|
{chr(10).join(read_rows)}

Each reads the docstring of an object its caller passes in (pydantic's JSON schemas of models,
  enums, dataclasses and computed fields; openai's `pydantic_function_tool` and Agents
helpers; litellm's `function_to_dict`, which needs numpydoc, not in the layer; click's command
help; `inspect.getdoc`; `cmd`), copies one onto a wrapper (`functools`, `typing`,
`typing_extensions`, `propcache`, `importlib-metadata`; `jiter` and `fastuuid` copy their
extension module's, which is C), falls back when there is none (`dataclasses` writes the
signature; `contextlib`, `email._policybase`), or sits in a command-line `main()` (`timeit`,
`ftplib`, `smtpd`) or a Windows-only branch (`ctypes`). `layer/smoke/docstrings.py` runs
pydantic's, openai's and litellm's paths on this layer with a function's own models and
functions and checks that their docstrings arrive, down to the request litellm sends to an
OpenAI-compatible server; under `-OO`, which strips the function's own docstrings too (what
broke tool schemas when the reference layer was first pruned), it fails. What changes: JSON
schemas of the libraries' own models lose their descriptions, and `inspect.getdoc` no longer
falls back to a library base class's docstring; nothing in the layer does either.

### The real runtime: an estimate

The layer's runtime is python-build-standalone 3.11.15, which cannot be downloaded here; the rows
above use Debian's python3.11 (3.11.2). The wheels' share is exact (same lock). Since PBS release
20250517 the interpreter links libpython statically; a stripped libpython for 3.11 is 24.4 MB on
x86_64 (PBS issue #275), and the issue puts the 3.11 interpreter at about 24 MB (PBS issue #941,
as cited there; not read here), against Debian's {interpreter_file:,} bytes, {interpreter:,}
zipped. This layer's binaries over {BINARY_BYTES:,} bytes zip to {ratios[0]}-{ratios[1]} of
their size ({measured_ratios}), so {PBS_INTERPRETER_BYTES:,} bytes would zip to
{round(PBS_INTERPRETER_BYTES * ratios[0]):,}-{round(PBS_INTERPRETER_BYTES * ratios[1]):,}.
OpenSSL, SQLite, libffi and most extension modules are inside PBS's interpreter, where Debian's
come from the system or from `lib-dynload` ({split["after"]["lib-dynload"]:,} bytes zipped here;
the low end takes them out, the high end keeps them).

**Estimate: {low / 1e6:.1f} to {high / 1e6:.1f} MB zipped** for the reference layer with its real
runtime (the same arithmetic on the "before" row gives {low_before / 1e6:.1f} to
{high_before / 1e6:.1f} MB; the issue's 31-33 MB for it means a ratio of
{implied[0]:.2f}-{implied[1]:.2f}). It is an
estimate, not a measurement: the ratios are other binaries', the 24 MB is from x86_64 and
another release, the standard library is 3.11.2's and not 3.11.15's (the generated rules name
modules, so a module only 3.11.15 ships is kept; its docstrings are stripped like the rest),
and PBS's shared libpython is assumed gone (the `DT_NEEDED` check removes it when nothing links
it, as with Debian's). The build measures it the day the archive can be fetched: `pybuild build`
reports the runtime's share (`runtime_share`), and the goal in `layer/layer.toml` (25,000,000,
which the estimate exceeds) is then to be set from it.
"""
    write_section("size", markdown, data)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
