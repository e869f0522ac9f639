"""Rows fill the core's dataclasses by column name; conversions win over the raw column."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rag.adapters.postgres.rows import from_row


@dataclass(frozen=True)
class _Thing:
    name: str
    size: int
    label: str = "none"


def test_columns_named_as_fields_fill_them_and_others_are_ignored() -> None:
    thing = from_row(_Thing, {"name": "a", "size": 3, "label": "x", "extra": 1})
    assert thing == _Thing("a", 3, "x")


def test_a_converted_field_replaces_its_column_and_a_defaulted_field_may_be_missing() -> None:
    thing = from_row(_Thing, {"name": "a", "size": "3"}, size=3)
    assert thing == _Thing("a", 3)


def test_a_missing_field_without_a_default_is_an_error() -> None:
    with pytest.raises(TypeError):
        from_row(_Thing, {"name": "a"})
