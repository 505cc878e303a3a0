"""The reference layer, pybuild against what users build today, side by side in one run.

Run: .venv/bin/python benchmarks/layer.py [--runs N]     (needs qemu-user-static, network)

- naive: `pip install --target` of the same pinned wheels (`--platform` flags, no deps resolved
  on the host), the same runtime unpruned, no strip, no bytecode, `zip -r -9`;
- pybuild: `pybuild build` of layer/layer.toml with the Debian stand-in runtime (the real PBS
  archive is not downloadable on these machines), cold (empty cache) and warm.

Both layers run under the smoke harness (qemu-aarch64-static, the layer at /opt read-only, as
on Lambda): `import litellm` and a mocked completion, interleaved, median of N runs. Results
go to benchmarks/RESULTS.md and benchmarks/layer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import DEBIAN_EXAMPLE, ROOT, reference_lock, write_section
from pybuild.model.layerfile import Layer, load_layer
from pybuild.model.lockfile import read_lock
from pybuild.model.target import Arch
from pybuild.model.tree import Tree
from pybuild.runtimes.debian import DebianProvider
from pybuild.smoke.runner import Runner, SmokeSpec
from pybuild.smoke.sysroot import build_sysroot
from pybuild.support.cache import default_cache_dir
from pybuild.support.extract import TreeWriter, extract_zip
from pybuild.ui import Ui

IMPORT = "import litellm"
MOCK = (
    "import litellm\n"
    "r = litellm.completion(model='gpt-4o-mini', mock_response='pong',\n"
    "                       messages=[{'role': 'user', 'content': 'ping'}])\n"
    "assert r.choices[0].message.content == 'pong'\n"
)
IMPORT_GOAL = 0.6  # pybuild's import time / naive's
WARM_GOAL = 20.0  # seconds for a warm rebuild


def _run(command: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def pybuild_builds(work: Path) -> tuple[Path, float, float]:
    """Build the reference layer with Debian's Python with an empty cache, then again warm."""
    subprocess.run(
        [sys.executable, "-m", "pybuild", "lock", "-q", "--check", "--layer", str(DEBIAN_EXAMPLE)],
        check=True,
    )
    out = work / "pybuild"
    env = {**os.environ, "PYBUILD_CACHE_DIR": str(work / "cold-cache")}
    command = [
        sys.executable,
        "-m",
        "pybuild",
        "build",
        "-q",
        "--layer",
        str(DEBIAN_EXAMPLE),
        "--out",
        str(out),
    ]
    cold = _run(command, env=env)
    warm = _run(command, env=env)
    return out / "litellm-debian12.zip", cold, warm


def naive_build(work: Path, layer: Layer) -> tuple[Path, float]:
    """What users do today, with the same runtime (unpruned) and the same wheel files."""
    lock = read_lock(layer.lock_path)
    root = work / "naive"
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    cache = default_cache_dir() / "sha256"
    for wheel in lock.wheels:
        (wheels / wheel.filename).symlink_to(cache / wheel.sha256[:2] / wheel.sha256)
    runtime_files = {f.sha256: cache / f.sha256[:2] / f.sha256 for f in lock.runtime.files}
    start = time.perf_counter()
    provider = DebianProvider()
    tree = Tree(root / "layer", provider.layout(lock.target))
    provider.install(lock.runtime, runtime_files, tree)
    site = tree.root / tree.layout.site_packages
    # pip wants every acceptable platform tag spelled out (what users copy from the docs)
    platforms = [f for tag in lock.target.platform_tags() for f in ("--platform", tag)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(wheels),
            "--only-binary",
            ":all:",
            "--target",
            str(site),
            "--upgrade",
            *platforms,
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    out = root / "naive.zip"
    subprocess.run(["zip", "-r", "-9", "-q", str(out), "python"], cwd=tree.root, check=True)
    return out, time.perf_counter() - start


def _unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(i.file_size for i in archive.infolist())


def _time(runner: Runner, code: str) -> float:
    start = time.perf_counter()
    completed = runner.run(["-c", code])
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{code!r} failed: {completed.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ui = Ui()
    sysroot = build_sysroot(default_cache_dir(), ui)
    layer = load_layer(DEBIAN_EXAMPLE)
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-layer-") as tmp:
        work = Path(tmp)
        pybuild_zip, cold, warm = pybuild_builds(work)
        naive_zip, naive_seconds = naive_build(work, layer)
        report = json.loads((pybuild_zip.parent / "litellm-debian12.report.json").read_text())
        sizes = {
            "naive": (naive_zip.stat().st_size, _unzipped(naive_zip)),
            "pybuild": (pybuild_zip.stat().st_size, _unzipped(pybuild_zip)),
        }

        spec = SmokeSpec(
            arch=Arch.AARCH64,
            python="python3.11",
            site_packages=DebianProvider().layout(layer.target).site_packages,
            sysroot=sysroot,
            env=dict(layer.smoke.env),
            timeout=1800,
        )
        runners = {}
        for name, path in (("naive", naive_zip), ("pybuild", pybuild_zip)):
            directory = work / f"{name}-opt"
            extract_zip(path, TreeWriter(directory, path.name))
            runners[name] = Runner(directory, spec)
        times: dict[str, dict[str, list[float]]] = {n: {"import": [], "mock": []} for n in runners}
        for run in range(args.runs):
            for name, runner in runners.items():
                times[name]["import"].append(round(_time(runner, IMPORT), 2))
                times[name]["mock"].append(round(_time(runner, MOCK), 2))
            ui.info(
                f"run {run + 1}/{args.runs}: import litellm: naive "
                f"{times['naive']['import'][-1]:.1f} s, pybuild "
                f"{times['pybuild']['import'][-1]:.1f} s"
            )
        # the sysroot's path is this machine's cache: name what it is instead
        how = runners["pybuild"].how.replace(f"sysroot {sysroot}", "the Debian 12 arm64 sysroot")

    median = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}
    ratio = median["pybuild"]["import"] / median["naive"]["import"]
    runtime_zipped = report["runtime_share"]["zipped_bytes"]
    wheels_zipped = sum(p["zipped_bytes"] for p in report["parts"] if p["kind"] == "wheel")
    goal = next(lim["limit"] for lim in report["limits"] if lim["kind"] == "goal")
    data: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": args.runs,
        "harness": how,
        "naive": {
            "zip_bytes": sizes["naive"][0],
            "unzipped_bytes": sizes["naive"][1],
            "build_seconds": round(naive_seconds, 1),
            **times["naive"],
        },
        "pybuild": {
            "zip_bytes": sizes["pybuild"][0],
            "unzipped_bytes": sizes["pybuild"][1],
            "runtime_zipped_bytes": runtime_zipped,
            "wheels_zipped_bytes": wheels_zipped,
            "cold_build_seconds": round(cold, 1),
            "warm_build_seconds": round(warm, 1),
            **times["pybuild"],
        },
        "import_ratio": round(ratio, 3),
        "import_goal": IMPORT_GOAL,
        "warm_goal_seconds": WARM_GOAL,
        "zip_goal": goal,
    }
    naive, ours = median["naive"], median["pybuild"]
    markdown = f"""
## Reference layer: pybuild vs naive

litellm 1.78.7 and its closure ({len(reference_lock().wheels)} wheels), runtime = Debian 12's
arm64 python3.11 (`examples/debian12-arm64`: the PBS archive cannot be downloaded here). Same run,
same machine
({data["machine"]}); import and completion under `{how}`, median of {args.runs} interleaved runs
(absolute times under qemu are not comparable across runs; the ratio is).
Re-run: `.venv/bin/python benchmarks/layer.py`.

| | naive (`pip install --target`, `zip -r -9`) | pybuild |
|---|---:|---:|
| zipped | {sizes["naive"][0]:,} | **{sizes["pybuild"][0]:,}** |
| unzipped | {sizes["naive"][1]:,} | {sizes["pybuild"][1]:,} |
| `import litellm` (median) | {naive["import"]:.2f} s | {ours["import"]:.2f} s |
| mocked `litellm.completion` (median, whole process) | {naive["mock"]:.2f} s | {ours["mock"]:.2f} s |
| build | {naive_seconds:.1f} s (wheels already downloaded) | cold {cold:.1f} s, warm {warm:.1f} s |

- Import time ratio pybuild / naive: **{ratio:.2f}** (goal <= {IMPORT_GOAL}:
  {"met" if ratio <= IMPORT_GOAL else "NOT met"}).
- Warm rebuild: {warm:.1f} s (goal <= {WARM_GOAL:.0f} s: {"met" if warm <= WARM_GOAL else "NOT met"}).
- pybuild zip: runtime (Debian's) {runtime_zipped:,} bytes zipped, wheels {wheels_zipped:,}
  bytes zipped; the layer's goal {goal:,}.
- The naive layer ships no bytecode and `/opt` is read-only, so every cold start compiles every
  module it imports; pybuild's layer imports precompiled, stripped, pruned code.
- The real runtime's share: see the estimate in the section below.
"""
    write_section("layer", markdown, data)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
