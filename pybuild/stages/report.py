"""Reports: what a build did (``<name>.report.json`` + a table) and what any layer zip holds.

The build report is a pure function of the build's inputs (no timings, no paths of the build
machine), so two reproducible builds also produce the same report.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pybuild.model.layerfile import BuildOptions
from pybuild.stages.archive import ArchiveResult
from pybuild.stages.assemble import Removal
from pybuild.stages.budgets import contributors
from pybuild.stages.bytecode import BytecodeResult
from pybuild.stages.strip import StripResult
from pybuild.stages.verify import VerifyReport
from pybuild.support.layerzip import LayerZipError, read_members

TOP_FILES = 20


@dataclass(frozen=True, slots=True)
class StageSize:
    stage: str
    files: int
    bytes: int


def build_report(
    *,
    name: str,
    archive: ArchiveResult,
    options: BuildOptions,
    stages: Sequence[StageSize],
    owner_of: Mapping[str, str],
    removals: Sequence[Removal],
    strip: Sequence[StripResult],
    root: Path,
    verify: VerifyReport,
    bytecode: BytecodeResult,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    by_rule: dict[str, dict[str, int]] = {}
    for removal in removals:
        rule = by_rule.setdefault(removal.rule, {"files": 0, "bytes": 0})
        rule["files"] += 1
        rule["bytes"] += removal.size
    files = [e for e in archive.entries if e.kind == "file"]
    largest = sorted(files, key=lambda e: (-e.size, e.name))[:TOP_FILES]
    return {
        "name": name,
        "zip": {
            "file": archive.path.name,
            "sha256": archive.sha256,
            "bytes": archive.size,
            "entries": len(archive.entries),
            "unpacked_bytes": archive.unpacked,
            "timestamp": archive.timestamp,
        },
        "budgets": {"zip_bytes": options.zip_budget, "unpacked_bytes": options.unpacked_budget},
        "settings": dict(settings),
        "stages": [{"stage": s.stage, "files": s.files, "bytes": s.bytes} for s in stages],
        "distributions": {
            owner: {"unpacked_bytes": unpacked, "zipped_bytes": zipped}
            for owner, (unpacked, zipped) in contributors(archive, owner_of).items()
        },
        "removed": {
            "by_rule": by_rule,
            "files": [{"path": r.path, "bytes": r.size, "rule": r.rule} for r in removals],
        },
        "strip": [
            {
                "path": s.path.relative_to(root).as_posix(),
                "status": s.status,
                "bytes_before": s.size_before,
                "bytes_after": s.size_after,
                "reason": s.reason,
            }
            for s in strip
        ],
        "verify": {
            "elf_files": len(verify.elf_files),
            "policy": verify.target.policy.name,
            "profile": verify.target.profile.name,
            "problems": len(verify.problems),
        },
        "bytecode": {
            "mode": bytecode.mode,
            "compiled": bytecode.compiled,
            "compiler_version": bytecode.compiler.version,
            "magic": bytecode.magic,
            "not_compiled": [{"path": p, "reason": r} for p, r in bytecode.failed],
        },
        "symlinks_dropped": [
            {"link": link, "target": target} for link, target in archive.dropped_links
        ],
        "symlinks_copied": [
            {"link": link, "target": target} for link, target in archive.copied_links
        ],
        "largest_files": [
            {"path": e.name, "bytes": e.size, "zipped_bytes": e.compressed} for e in largest
        ],
    }


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.2f} MB"


def render_build_report(report: Mapping[str, Any], width: int = 100) -> str:
    """The human table of a build report."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    zipped = report["zip"]
    console.print(
        f"{report['name']}: {zipped['file']}  {zipped['bytes']:,} bytes zipped, "
        f"{zipped['unpacked_bytes']:,} unpacked, {zipped['entries']:,} entries"
    )
    console.print(f"sha256 {zipped['sha256']}")
    stages = Table(
        "stage", "files", "bytes", title="tree size after each stage", title_justify="left"
    )
    for stage in report["stages"]:
        stages.add_row(stage["stage"], f"{stage['files']:,}", f"{stage['bytes']:,}")
    console.print(stages)
    owners = Table(
        "distribution",
        "unpacked",
        "zipped",
        "share of zip",
        title="size per distribution",
        title_justify="left",
    )
    total = max(zipped["bytes"], 1)
    for owner, sizes in report["distributions"].items():
        owners.add_row(
            owner,
            _mb(sizes["unpacked_bytes"]),
            _mb(sizes["zipped_bytes"]),
            f"{sizes['zipped_bytes'] / total:.1%}",
        )
    console.print(owners)
    removed = Table("prune rule", "files", "bytes saved", title="removed", title_justify="left")
    for rule, sizes in sorted(
        report["removed"]["by_rule"].items(), key=lambda item: -item[1]["bytes"]
    ):
        removed.add_row(rule, f"{sizes['files']:,}", f"{sizes['bytes']:,}")
    console.print(removed)
    strip = report["strip"]
    saved = sum(s["bytes_before"] - s["bytes_after"] for s in strip)
    refused = [s for s in strip if s["status"] == "refused"]
    console.print(
        f"strip: {len(strip)} ELF files, {saved:,} bytes saved"
        + (f", {len(refused)} left as they were" if refused else "")
    )
    bytecode = report["bytecode"]
    console.print(
        f"bytecode: {bytecode['compiled']:,} modules ({bytecode['mode']}, CPython "
        f"{bytecode['compiler_version']})"
        + (
            f", {len(bytecode['not_compiled'])} kept as source only"
            if bytecode["not_compiled"]
            else ""
        )
    )
    if report["symlinks_dropped"]:
        links = ", ".join(f"{s['link']} -> {s['target']}" for s in report["symlinks_dropped"])
        console.print(f"symbolic links left out of the zip: {links}")
    if report["symlinks_copied"]:
        links = ", ".join(f"{s['link']} -> {s['target']}" for s in report["symlinks_copied"])
        console.print(f"symbolic links to small files, written as copies: {links}")
    largest = Table("largest files", "bytes", "zipped", title_justify="left")
    for entry in report["largest_files"][:10]:
        largest.add_row(entry["path"], f"{entry['bytes']:,}", f"{entry['zipped_bytes']:,}")
    console.print(largest)
    return console.export_text()


def _group_of(name: str) -> str:
    """Which part of a layer an entry belongs to, for any layer zip (ours or not)."""
    parts = name.rstrip("/").split("/")
    if "site-packages" in parts:
        index = parts.index("site-packages")
        if len(parts) > index + 1:
            top = parts[index + 1]
            for suffix in (".dist-info", ".data"):
                if top.endswith(suffix):
                    top = top[: -len(suffix)].rsplit("-", 1)[0]
            return top.removesuffix(".py").split(".")[0].lower().replace("_", "-")
    if parts[0] == "python" and len(parts) > 3 and parts[2].startswith("python3"):
        return "python (stdlib)"
    return f"{parts[0]} ({'/'.join(parts[1:2]) or 'top'})"


def zip_table(path: Path, width: int = 100) -> str:
    """The size table of any layer zip: per distribution / runtime part, largest first."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = read_members(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise LayerZipError(f"{path}: cannot read the zip: {err}") from None
    groups: dict[str, list[int]] = {}
    for member in members:
        sizes = groups.setdefault(_group_of(member.name), [0, 0, 0])
        sizes[0] += 1
        sizes[1] += member.info.file_size
        sizes[2] += member.info.compress_size
    total_zipped = max(sum(g[2] for g in groups.values()), 1)
    table = Table(
        "part",
        "files",
        "unpacked",
        "zipped",
        "share",
        title=f"{path.name}: {path.stat().st_size:,} bytes, {len(members):,} entries",
        title_justify="left",
    )
    for group, (count, unpacked, zipped) in sorted(groups.items(), key=lambda g: -g[1][2]):
        table.add_row(
            group, f"{count:,}", _mb(unpacked), _mb(zipped), f"{zipped / total_zipped:.1%}"
        )
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.export_text()
