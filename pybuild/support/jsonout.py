"""The one JSON encoding pybuild writes, and the one conversion of typed reports into it.

Sorted keys, 2-space indent, trailing newline (byte-stable, diffable). Dataclasses become objects
of their fields, enums their values, paths strings, tuples arrays: reports are typed in the code
and turned into JSON here only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def jsonable(value: object) -> Any:
    """`value` as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


def dumps_stable(data: object) -> str:
    """Sorted keys, 2-space indent, trailing newline."""
    return json.dumps(jsonable(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
