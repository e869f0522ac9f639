"""Rows to the core's dataclasses: columns named as the fields fill them, nothing else does."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: Mapping[str, Any], **converted: Any) -> T:
    """An instance of the dataclass ``cls`` from a ``dict_row`` whose columns carry its field
    names; ``converted`` gives the fields whose column needs a conversion (an enum, a JSON map).
    A field with a default may be missing from the row; a missing field without one raises."""
    names = (field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    return cls(**{name: row[name] for name in names if name in row and name not in converted}, **converted)
