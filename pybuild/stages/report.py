"""Reports: what a build did (``<name>.report.json`` + a table) and what any layer zip holds.

The build report is a typed value (`BuildReport`), turned into JSON in one place
(`pybuild.support.jsonout`) and into a table here. It is a pure function of the build's inputs
(no timings, no paths of the build machine), so two reproducible builds also produce the same
report. Sizes are ranked by zipped bytes: what the zip limit counts.
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

from pybuild.model.tree import RUNTIME, Owner, Removal, Tree
from pybuild.stages.archive import ArchiveResult
from pybuild.stages.budgets import Limit
from pybuild.stages.bytecode import BytecodeResult
from pybuild.stages.sbom import NOT_PINNED
from pybuild.stages.strip import StripResult
from pybuild.stages.verify import VerifyReport
from pybuild.support.extract import UnsafeArchiveError, zip_members

TOP_FILES = 20
DIRECTORIES = "(directories)"


@dataclass(frozen=True, slots=True)
class StageSize:
    """The tree after one build stage (assemble, prune, strip, bytecode): its files and links, and
    their bytes (a link counts its target's length); report.json's ``stages`` and report.txt's "tree
    size after each stage"."""

    stage: str
    files: int
    bytes: int


def stage_size(tree: Tree, stage: str) -> StageSize:
    """The tree's size now, recorded as after `stage`."""
    return StageSize(stage, len(tree.entries), tree.total_size())


@dataclass(frozen=True, slots=True)
class ZipSummary:
    """The zip written: file name, sha256, size in bytes, entries, unpacked bytes, the entries'
    timestamp (epoch seconds) and whether it is deployable; report.json's ``zip`` and the first
    lines of report.txt (all but the timestamp)."""

    file: str
    sha256: str
    bytes: int
    entries: int
    unpacked_bytes: int
    timestamp: int
    deployable: bool  # False: over a limit that fails the build, written as <name>.over-limit.zip


@dataclass(frozen=True, slots=True)
class Part:
    """One owner's share of the zip (a distribution, the runtime, the layer's own files)."""

    owner: str
    kind: str
    files: int
    unpacked_bytes: int
    zipped_bytes: int
    share: float  # of the zip's bytes


@dataclass(frozen=True, slots=True)
class LimitReport:
    """One size limit and where the zip stands: measure ("zipped" or "unzipped"), kind ("lambda" or
    "goal"), limit and actual size in bytes, gap (bytes left; negative: over), whether being over
    fails the build, and whether it is over; report.json's ``limits`` and a line each in
    report.txt."""

    measure: str
    kind: str
    limit: int
    actual: int
    gap: int
    fails_build: bool
    over: bool


@dataclass(frozen=True, slots=True)
class FileSize:
    """One of the largest files of the zip: path, owner, unpacked and zipped bytes; report.json's
    ``largest_files`` (the 20 largest zipped) and report.txt's table (the first 10)."""

    path: str
    owner: str
    bytes: int
    zipped_bytes: int


@dataclass(frozen=True, slots=True)
class RuleTotal:
    """How many files and bytes one rule removed (a prune rule, or the runtime's own removals while
    assembling); report.json's ``removed_by_rule`` and report.txt's "removed" table, most bytes
    first."""

    rule: str
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class RemovedFile:
    """One removed file: layer-relative path, size in bytes, and the rule that removed it;
    report.json's ``removed`` (report.txt has only the totals per rule)."""

    path: str
    bytes: int
    rule: str


@dataclass(frozen=True, slots=True)
class StripEntry:
    """What stripping did to one ELF file: layer-relative path, status ("stripped",
    "already-stripped" or "refused"), bytes before and after, and why it was not stripped (or "");
    report.json's ``strip``. report.txt gives the bytes saved and each file refused."""

    path: str
    status: str
    bytes_before: int
    bytes_after: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifySummary:
    """The ELF check of the tree: how many ELF files, the manylinux policy and system profile they
    were checked against, and the number of problems (0 in a build, which stops at any);
    report.json's ``verify`` only."""

    elf_files: int
    policy: str
    profile: str
    problems: int


@dataclass(frozen=True, slots=True)
class BytecodeSummary:
    """The bytecode stage: mode, modules compiled, the compiler (`Compiler.describe` if the lock
    pins it, else "compiler not pinned"), its version, whether it is pinned, the magic number (hex),
    and the modules left as source (path, error); report.json's ``bytecode`` and one line of
    report.txt."""

    mode: str
    compiled: int
    compiler: str  # describe(): the pinned files or "not pinned"
    compiler_version: str
    compiler_pinned: bool
    magic: str
    not_compiled: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Link:
    """A symbolic link (zip name) and its target as the link says it; report.json's
    ``symlinks_dropped`` and ``symlinks_copied``, and a line of report.txt for each kind."""

    link: str
    target: str


@dataclass(frozen=True, slots=True)
class BuildReport:
    """Everything a build reports about its zip, a pure function of the build's inputs: written
    field by field as ``<name>.report.json`` and rendered as ``<name>.report.txt``
    (`render_build_report`).

    `runtime_share` is the runtime's `Part` (None if the zip holds none of its files). `settings`
    (the options that decide the bytes) and `tools` (the byte-deciding tools' versions), like
    `removed` and `verify`, are in report.json only.
    """

    name: str
    zip: ZipSummary
    runtime_share: Part | None
    limits: tuple[LimitReport, ...]
    settings: Mapping[str, Any]
    tools: Mapping[str, str]
    stages: tuple[StageSize, ...]
    parts: tuple[Part, ...]  # largest zipped first
    largest_files: tuple[FileSize, ...]  # largest zipped first
    removed_by_rule: tuple[RuleTotal, ...]
    removed: tuple[RemovedFile, ...]
    strip: tuple[StripEntry, ...]
    verify: VerifySummary
    bytecode: BytecodeSummary
    symlinks_dropped: tuple[Link, ...]
    symlinks_copied: tuple[Link, ...]


def parts(archive: ArchiveResult, owner_of: Mapping[str, Owner]) -> tuple[Part, ...]:
    """Each owner's files, unpacked and zipped bytes, largest zipped first."""
    sizes: dict[tuple[str, str], list[int]] = {}
    for entry in archive.entries:
        owner = owner_of.get(entry.name.rstrip("/"))
        key = (str(owner), owner.kind.value) if owner is not None else (DIRECTORIES, "zip")
        total = sizes.setdefault(key, [0, 0, 0])
        total[0] += 1
        total[1] += entry.size
        total[2] += entry.compressed
    whole = max(archive.size, 1)
    ranked = sorted(sizes.items(), key=lambda item: (-item[1][2], item[0]))
    return tuple(
        Part(name, kind, count, unpacked, zipped, round(zipped / whole, 4))
        for (name, kind), (count, unpacked, zipped) in ranked
    )


def build_report(
    *,
    name: str,
    archive: ArchiveResult,
    deployable: bool,
    limits: Sequence[Limit],
    stages: Sequence[StageSize],
    owner_of: Mapping[str, Owner],
    removals: Sequence[Removal],
    strip: Sequence[StripResult],
    root: Path,
    verify: VerifyReport,
    bytecode: BytecodeResult,
    settings: Mapping[str, Any],
    tools: Mapping[str, str],
) -> BuildReport:
    """The report of a build from what its stages returned. `owner_of` maps layer-relative paths to
    their owners; `root` is the tree the strip results' paths are under; `deployable` is false when
    the zip is over a limit that fails the build."""
    totals: dict[str, list[int]] = {}
    for removal in removals:
        rule = totals.setdefault(removal.rule, [0, 0])
        rule[0] += 1
        rule[1] += removal.size
    files = [e for e in archive.entries if e.kind != "dir"]
    largest = sorted(files, key=lambda e: (-e.compressed, e.name))[:TOP_FILES]
    shares = parts(archive, owner_of)
    runtime = next(
        (p for p in shares if p.owner == str(RUNTIME) and p.kind == RUNTIME.kind.value), None
    )
    compiler = bytecode.compiler
    return BuildReport(
        name=name,
        zip=ZipSummary(
            file=archive.path.name,
            sha256=archive.sha256,
            bytes=archive.size,
            entries=len(archive.entries),
            unpacked_bytes=archive.unpacked,
            timestamp=archive.timestamp,
            deployable=deployable,
        ),
        runtime_share=runtime,
        limits=tuple(
            LimitReport(
                lim.measure, lim.kind.value, lim.limit, lim.actual, lim.gap, lim.fails, lim.over
            )
            for lim in limits
        ),
        settings=dict(settings),
        tools=dict(tools),
        stages=tuple(stages),
        parts=shares,
        largest_files=tuple(
            FileSize(e.name, str(owner_of.get(e.name, DIRECTORIES)), e.size, e.compressed)
            for e in largest
        ),
        removed_by_rule=tuple(
            RuleTotal(rule, count, size)
            for rule, (count, size) in sorted(
                totals.items(), key=lambda item: (-item[1][1], item[0])
            )
        ),
        removed=tuple(RemovedFile(r.path, r.size, r.rule) for r in removals),
        strip=tuple(
            StripEntry(
                s.path.relative_to(root).as_posix(), s.status, s.size_before, s.size_after, s.reason
            )
            for s in strip
        ),
        verify=VerifySummary(
            len(verify.elf_files),
            verify.target.policy.name,
            verify.target.profile.name,
            len(verify.problems),
        ),
        bytecode=BytecodeSummary(
            mode=bytecode.mode.value,
            compiled=bytecode.compiled,
            compiler=compiler.describe() if compiler.pinned else NOT_PINNED,
            compiler_version=compiler.version,
            compiler_pinned=compiler.pinned is not None,
            magic=bytecode.magic,
            not_compiled=bytecode.failed,
        ),
        symlinks_dropped=tuple(Link(a, b) for a, b in archive.dropped_links),
        symlinks_copied=tuple(Link(a, b) for a, b in archive.copied_links),
    )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.2f} MB"


def render_build_report(report: BuildReport, width: int = 100) -> str:
    """The human table of a build report."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    z = report.zip
    console.print(
        f"{report.name}: {z.file}  {z.bytes:,} bytes zipped, {z.unpacked_bytes:,} unpacked, "
        f"{z.entries:,} entries" + ("" if z.deployable else "  (OVER A LIMIT: not deployable)")
    )
    console.print(f"sha256 {z.sha256}")
    for limit in report.limits:
        state = f"{-limit.gap:,} over" if limit.over else f"{limit.gap:,} under"
        fails = " (fails the build)" if limit.over and limit.fails_build else ""
        console.print(f"{limit.kind} limit, {limit.measure}: {limit.limit:,}: {state}{fails}")
    if report.runtime_share is not None:
        share = report.runtime_share
        console.print(
            f"runtime: {share.zipped_bytes:,} bytes zipped ({share.share:.1%} of the zip), "
            f"{share.unpacked_bytes:,} unpacked"
        )
    stages = Table(
        "stage", "files", "bytes", title="tree size after each stage", title_justify="left"
    )
    for stage in report.stages:
        stages.add_row(stage.stage, f"{stage.files:,}", f"{stage.bytes:,}")
    console.print(stages)
    owners = Table(
        "part",
        "files",
        "unpacked",
        "zipped",
        "share of zip",
        title="size per distribution (largest zipped first)",
        title_justify="left",
    )
    for part in report.parts:
        owners.add_row(
            part.owner,
            f"{part.files:,}",
            _mb(part.unpacked_bytes),
            _mb(part.zipped_bytes),
            f"{part.share:.1%}",
        )
    console.print(owners)
    removed = Table("prune rule", "files", "bytes saved", title="removed", title_justify="left")
    for rule in report.removed_by_rule:
        removed.add_row(rule.rule, f"{rule.files:,}", f"{rule.bytes:,}")
    console.print(removed)
    saved = sum(s.bytes_before - s.bytes_after for s in report.strip)
    refused = [s for s in report.strip if s.status == "refused"]
    console.print(
        f"strip: {len(report.strip)} ELF files, {saved:,} bytes saved"
        + (f", {len(refused)} left as they were" if refused else "")
    )
    for left in refused:
        console.print(f"  left as it was: {left.path}: {left.reason}")
    b = report.bytecode
    console.print(
        f"bytecode: {b.compiled:,} modules ({b.mode}, CPython {b.compiler_version}; {b.compiler})"
        + (f", {len(b.not_compiled)} kept as source only" if b.not_compiled else "")
    )
    if report.symlinks_dropped:
        links = ", ".join(f"{s.link} -> {s.target}" for s in report.symlinks_dropped)
        console.print(f"symbolic links left out of the zip: {links}")
    if report.symlinks_copied:
        links = ", ".join(f"{s.link} -> {s.target}" for s in report.symlinks_copied)
        console.print(f"symbolic links to small files, written as copies: {links}")
    largest = Table("largest files (zipped)", "owner", "bytes", "zipped", title_justify="left")
    for entry in report.largest_files[:10]:
        largest.add_row(entry.path, entry.owner, f"{entry.bytes:,}", f"{entry.zipped_bytes:,}")
    console.print(largest)
    return console.export_text()


def _group_of(name: str) -> str:
    """Which part of a layer an entry belongs to, for any layer zip (ours or not)."""
    parts = name.rstrip("/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            index = parts.index(marker)
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
    """The size table of any layer zip: per distribution / runtime part and its largest files,
    largest zipped first."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = zip_members(archive, str(path))
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeArchiveError(f"{path}: cannot read the zip: {err}") from None
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
    for group, (count, unpacked, zipped) in sorted(groups.items(), key=lambda g: (-g[1][2], g[0])):
        table.add_row(
            group, f"{count:,}", _mb(unpacked), _mb(zipped), f"{zipped / total_zipped:.1%}"
        )
    files = sorted(
        (m for m in members if m.kind == "file"), key=lambda m: (-m.info.compress_size, m.name)
    )
    largest = Table("largest files (zipped)", "unpacked", "zipped", title_justify="left")
    for member in files[:TOP_FILES]:
        largest.add_row(member.name, f"{member.info.file_size:,}", f"{member.info.compress_size:,}")
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    console.print(largest)
    return console.export_text()
