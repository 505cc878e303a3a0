"""pybuild's stripper against GNU strip, over every ELF file of the reference closure.

Run: .venv/bin/python benchmarks/strip.py   (needs binutils-aarch64-linux-gnu)
Goal: pybuild's stripped total <= 1.001 x `aarch64-linux-gnu-strip --strip-unneeded`'s.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import extract_elf_members, reference_wheels, write_section
from pybuild.stages.strip import strip_paths

RUNS = 5


@dataclasses.dataclass(frozen=True)
class Row:
    file: str
    original: int
    pybuild: int
    gnu_strip: int


GOAL = 1.001


def _timed(action: Callable[[], object], setup: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(RUNS):
        setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    gnu_strip = shutil.which("aarch64-linux-gnu-strip")
    if gnu_strip is None:
        print("needs aarch64-linux-gnu-strip (apt-get install binutils-aarch64-linux-gnu)")
        return 2
    version = subprocess.run(
        [gnu_strip, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-strip-") as tmp:
        pristine = extract_elf_members(reference_wheels(), Path(tmp) / "pristine")
        ours_dir, gnu_dir = Path(tmp) / "ours", Path(tmp) / "gnu"

        def fresh(directory: Path) -> None:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.copytree(Path(tmp) / "pristine", directory)

        ours_times = _timed(lambda: strip_paths([ours_dir]), lambda: fresh(ours_dir))
        gnu_times = _timed(
            lambda: subprocess.run(
                [gnu_strip, "--strip-unneeded", *sorted(map(str, gnu_dir.iterdir()))], check=True
            ),
            lambda: fresh(gnu_dir),
        )
        rows = [
            Row(
                path.name,
                path.stat().st_size,
                (ours_dir / path.name).stat().st_size,
                (gnu_dir / path.name).stat().st_size,
            )
            for path in pristine
        ]
        results = strip_paths([ours_dir])  # already stripped: must report so, and change nothing
        assert all(r.status == "already-stripped" for r in results)

    original = sum(r.original for r in rows)
    ours = sum(r.pybuild for r in rows)
    gnu = sum(r.gnu_strip for r in rows)
    megabytes = original / 1e6
    ours_median, gnu_median = statistics.median(ours_times), statistics.median(gnu_times)
    ratio = ours / gnu
    data = {
        "files": [dataclasses.asdict(r) for r in rows],
        "original_bytes": original,
        "pybuild_bytes": ours,
        "gnu_strip_bytes": gnu,
        "ratio": round(ratio, 6),
        "goal_ratio": GOAL,
        "goal_met": ratio <= GOAL,
        "pybuild_seconds_median": round(ours_median, 4),
        "gnu_strip_seconds_median": round(gnu_median, 4),
        "pybuild_ms_per_mb": round(ours_median / megabytes * 1000, 2),
        "gnu_strip_ms_per_mb": round(gnu_median / megabytes * 1000, 2),
        "runs": RUNS,
        "gnu_strip_version": version,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    larger = [r.file for r in rows if r.pybuild > r.gnu_strip]
    markdown = f"""
## Strip: pybuild vs GNU strip

Every ELF file of the reference closure ({len(rows)} extension modules of the locked wheels),
stripped by `pybuild strip` and by `{version}` with `--strip-unneeded`, same run, median of {RUNS}.
Re-run: `.venv/bin/python benchmarks/strip.py`.

| | bytes | vs original | time (median) | ms per MB |
|---|---:|---:|---:|---:|
| original | {original:,} | 100.0% | | |
| pybuild strip | {ours:,} | {ours / original:.1%} | {ours_median:.3f} s | {data["pybuild_ms_per_mb"]} |
| GNU strip --strip-unneeded | {gnu:,} | {gnu / original:.1%} | {gnu_median:.3f} s | {data["gnu_strip_ms_per_mb"]} |

Ratio pybuild / GNU strip: **{ratio:.6f}** (goal <= {GOAL}: {"met" if ratio <= GOAL else "NOT met"}).
Files where pybuild's result is larger: {", ".join(larger) if larger else "none"}.
pybuild drops every non-allocated section (GNU strip keeps `.comment` and
`.gnu.build.attributes`) and re-parses each result before replacing the file, which is most of
its time.
"""
    write_section("strip", markdown, data)
    print(markdown)
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
