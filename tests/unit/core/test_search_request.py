from __future__ import annotations

import pytest

from rag.core.errors import InvalidInput
from rag.core.search import SearchRequest


def test_defaults_and_stripping() -> None:
    request = SearchRequest.validated(query="  heart disease \n", top_k=0)
    assert request.query == "heart disease" and request.top_k == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": "   "}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": "ok", "top_k": 101}, "top_k"),
        ({"query": "ok", "top_k": -1}, "top_k"),
        ({"query": "ok", "document_ids": ("not-a-uuid",)}, "filters.document_ids"),
    ],
)
def test_invalid_fields_are_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        SearchRequest.validated(**kwargs)  # type: ignore[arg-type]
    assert excinfo.value.field == field
    assert str(excinfo.value).startswith(f"{field}: ")


def test_limits_are_inclusive() -> None:
    assert SearchRequest.validated(query="x" * 1000, top_k=100).top_k == 100
    assert SearchRequest.validated(query="x", top_k=1).top_k == 1
