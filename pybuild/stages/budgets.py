"""The budgets stage: a layer over Lambda's limits (or the layer's own) fails, saying who is big."""

from __future__ import annotations

from collections.abc import Mapping

from pybuild.errors import CheckError
from pybuild.model.layerfile import BuildOptions
from pybuild.stages.archive import ArchiveResult

TOP = 8


class BudgetError(CheckError):
    """The zip or the unpacked tree exceeds its budget."""


def contributors(archive: ArchiveResult, owner_of: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """owner -> (unpacked bytes, zipped bytes), largest unpacked first."""
    sizes: dict[str, tuple[int, int]] = {}
    for entry in archive.entries:
        owner = owner_of.get(entry.name.rstrip("/"), "(directories)")
        unpacked, zipped = sizes.get(owner, (0, 0))
        sizes[owner] = (unpacked + entry.size, zipped + entry.compressed)
    return dict(sorted(sizes.items(), key=lambda item: (-item[1][0], item[0])))


def check_budgets(
    archive: ArchiveResult, options: BuildOptions, owner_of: Mapping[str, str]
) -> None:
    """Raise `BudgetError` naming the largest contributors if a budget is exceeded."""
    over = []
    if archive.size > options.zip_budget:
        over.append(f"zip is {archive.size:,} bytes, budget {options.zip_budget:,}")
    if archive.unpacked > options.unpacked_budget:
        over.append(
            f"unpacked tree is {archive.unpacked:,} bytes, budget {options.unpacked_budget:,}"
        )
    if not over:
        return
    largest = list(contributors(archive, owner_of).items())[:TOP]
    listing = ", ".join(
        f"{owner} {unpacked:,} ({zipped:,} zipped)" for owner, (unpacked, zipped) in largest
    )
    raise BudgetError(f"over budget: {'; '.join(over)}; largest: {listing}")
