"""FeedbackService's servicer translates and delegates: the caller's tenant and username go to the
label store, 0 means no chunk, the stored label comes back as the response."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from grpc_services.context import principal_scope
from grpc_services.servicers.feedback import FeedbackServicer
from rag.core.auth import Principal, Role
from rag.core.errors import InvalidInput
from rag.core.labels import LabelledQuery, LabelSource, RelevanceLabel
from rag.proto.rag.v1 import feedback_pb2

WHEN = datetime(2026, 12, 3, 10, 0, 1, 500000, tzinfo=UTC)


class RecordingLabels:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def grade(self, *args: Any, **kwargs: Any) -> RelevanceLabel:
        self.calls.append((args, kwargs))
        _tenant, query, document_id, grade = args
        return RelevanceLabel(
            "17",
            query.strip(),
            str(document_id),
            kwargs["chunk_id"],
            grade,
            kwargs["labelled_by"],
            LabelSource.FEEDBACK,
            WHEN,
        )

    def labelled_queries(self, tenant: str) -> list[LabelledQuery]:
        return []


def _call(
    servicer: FeedbackServicer, request: feedback_pb2.GradeResultRequest
) -> feedback_pb2.GradeResultResponse:
    with principal_scope(Principal.of("alice", "acme", Role.USER)):
        return asyncio.run(servicer.GradeResult(request, None))  # type: ignore[arg-type]


@pytest.mark.parametrize(("chunk_id", "stored_chunk"), [(0, None), (42, 42)])
def test_the_grade_is_the_callers_in_its_tenant(chunk_id: int, stored_chunk: int | None) -> None:
    labels = RecordingLabels()
    doc = uuid.uuid4()
    response = _call(
        FeedbackServicer(labels),
        feedback_pb2.GradeResultRequest(
            query=" vitamin D ", document_id=str(doc).upper(), chunk_id=chunk_id, grade=2
        ),
    )
    assert labels.calls == [
        (("acme", " vitamin D ", doc, 2), {"chunk_id": stored_chunk, "labelled_by": "alice"})
    ]
    assert (response.query_key, response.document_id, response.grade) == ("17", str(doc), 2)
    assert response.labelled_at.ToDatetime(UTC) == WHEN


def test_a_document_id_that_is_no_uuid_names_the_field() -> None:
    labels = RecordingLabels()
    with pytest.raises(InvalidInput, match=r"^document_id: 'nope' is not a document id \(a UUID\)"):
        _call(
            FeedbackServicer(labels), feedback_pb2.GradeResultRequest(query="q", document_id="nope", grade=1)
        )
    assert labels.calls == []
