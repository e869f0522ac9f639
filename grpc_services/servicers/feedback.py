"""``rag.v1.FeedbackService``: a caller grades a result of its own query (labels:write).

Translation only: the label store (:class:`rag.core.ports.LabelStore`) validates and records
the grade in the caller's tenant, with the caller's username; another tenant's document is
NotFound there, worded as an unknown one.
"""

from __future__ import annotations

import asyncio

import grpc.aio

from grpc_services.context import annotate_call, current_principal
from grpc_services.servicers import convert
from rag.core.ports import LabelStore
from rag.proto.rag.v1 import feedback_pb2, feedback_pb2_grpc


class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    def __init__(self, labels: LabelStore) -> None:
        self._labels = labels

    async def GradeResult(
        self,
        request: feedback_pb2.GradeResultRequest,
        context: grpc.aio.ServicerContext[feedback_pb2.GradeResultRequest, feedback_pb2.GradeResultResponse],
    ) -> feedback_pb2.GradeResultResponse:
        principal = current_principal()
        label = await asyncio.to_thread(
            self._labels.grade,
            principal.tenant,
            request.query,
            convert.document_id(request.document_id),
            request.grade,
            chunk_id=request.chunk_id or None,
            labelled_by=principal.username,
        )
        annotate_call(document_id=label.document_id, grade=label.grade)
        return feedback_pb2.GradeResultResponse(
            query_key=label.query_key,
            document_id=label.document_id,
            grade=label.grade,
            labelled_at=convert.timestamp(label.labelled_at),
        )
