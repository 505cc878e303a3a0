"""The budgets stage: two kinds of size limit, checked on the finished zip.

Lambda's own limits fail the build: 52,428,800 bytes zipped for a direct upload, and 262,144,000
bytes unzipped, a limit the function's code and all its layers share (so a layer near it leaves
the function no room). The layer's own goals (`[budgets]` in layer.toml) are reported with their
gap and fail the build only when asked: `strict = true` there, or `pybuild build --strict`.

A build that fails a limit still writes its zip and report, under a name no deployment file
points at (`<name>.over-limit.zip`), so `report`, `diff` and `smoke --trace` can work on it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pybuild.model.layerfile import LAMBDA_UNPACKED_LIMIT, LAMBDA_ZIP_LIMIT, Budgets
from pybuild.stages.archive import ArchiveResult


class LimitKind(enum.StrEnum):
    """Whose limit: Lambda's (always fails the build) or the layer's goal (fails it when strict)."""

    LAMBDA = "lambda"  # AWS's quota: always fails the build
    GOAL = "goal"  # the layer's own: fails only when strict


@dataclass(frozen=True, slots=True)
class Limit:
    """One size limit and where the zip stands against it."""

    measure: str  # "zipped" or "unzipped"
    kind: LimitKind
    limit: int
    actual: int
    fails: bool  # whether being over it fails the build

    @property
    def over(self) -> bool:
        """Whether the zip is over the limit (being exactly at it is not over)."""
        return self.actual > self.limit

    @property
    def gap(self) -> int:
        """Bytes left (negative: bytes over)."""
        return self.limit - self.actual

    @property
    def failed(self) -> bool:
        """Whether the build fails on this limit: the zip is over it and `fails` is set."""
        return self.over and self.fails

    def describe(self) -> str:
        """One line: the measure, the actual and the limit in bytes, and how far under or over."""
        where = "Lambda's limit" if self.kind is LimitKind.LAMBDA else "the layer's goal"
        state = f"{-self.gap:,} over" if self.over else f"{self.gap:,} under"
        return f"{self.measure} {self.actual:,} bytes, {where} {self.limit:,}: {state}"


def check_budgets(archive: ArchiveResult, budgets: Budgets, *, strict: bool = False) -> list[Limit]:
    """Every limit that applies, Lambda's first."""
    strict = strict or budgets.strict
    limits = [
        Limit("zipped", LimitKind.LAMBDA, LAMBDA_ZIP_LIMIT, archive.size, True),
        Limit("unzipped", LimitKind.LAMBDA, LAMBDA_UNPACKED_LIMIT, archive.unpacked, True),
    ]
    if budgets.zip_bytes is not None:
        limits.append(Limit("zipped", LimitKind.GOAL, budgets.zip_bytes, archive.size, strict))
    if budgets.unpacked_bytes is not None:
        limits.append(
            Limit("unzipped", LimitKind.GOAL, budgets.unpacked_bytes, archive.unpacked, strict)
        )
    return limits
