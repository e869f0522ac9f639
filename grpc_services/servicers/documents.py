"""``rag.v1.DocumentService``: upload (client streaming), get, list, delete — tenant-scoped.

Translation only: the intake (:mod:`rag.ingestion.intake`) stores, records and deletes
documents and their blobs, the ingestion trigger (:mod:`rag.ingestion.trigger`) starts their
ingestion, the repository reads them; this module turns messages into those calls and back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import grpc.aio

from grpc_services.context import annotate_call, current_principal
from grpc_services.servicers import convert
from grpc_services.validation import MAX_PAGE_SIZE
from rag.adapters.postgres.documents import DocumentRepository
from rag.core.errors import DeadlineExceeded, InvalidInput
from rag.ingestion.intake import Intake
from rag.ingestion.trigger import IngestionTrigger
from rag.proto.rag.v1 import document_pb2, document_pb2_grpc


def _encode_token(created_at: datetime, doc_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), str(doc_id)]).encode()).decode()


def _decode_token(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, doc_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(created, str) or not isinstance(doc_id, str):
            raise TypeError("a token holds two strings")  # uuid.UUID(5) raises AttributeError
        return datetime.fromisoformat(created), uuid.UUID(doc_id)
    except (ValueError, TypeError):
        raise InvalidInput(
            "is not a token from a previous ListDocuments response", field="page_token"
        ) from None


class DocumentServicer(document_pb2_grpc.DocumentServiceServicer):
    def __init__(
        self,
        *,
        intake: Intake,
        documents: DocumentRepository,
        trigger: IngestionTrigger,
        max_upload_bytes: int,
        idle_timeout_s: float = 60.0,
        on_change: Callable[[str], None] = lambda tenant: None,
    ) -> None:
        self._on_change = on_change  # this process changed a tenant's documents (search caches)
        self._intake = intake
        self._documents = documents
        self._trigger = trigger
        self._max_upload_bytes = max_upload_bytes
        self._idle_timeout_s = idle_timeout_s

    async def Upload(
        self,
        request_iterator: AsyncIterator[document_pb2.UploadRequest],
        context: grpc.aio.ServicerContext[document_pb2.UploadRequest, document_pb2.UploadResponse],
    ) -> document_pb2.UploadResponse:
        """Stream the file to object storage as it arrives (see :meth:`Intake.receive_stream`),
        then start its ingestion, unless it is an unchanged duplicate already past ``received``."""
        principal = current_principal()
        messages = aiter(request_iterator)
        first = await self._next(messages)
        if first is None or first.WhichOneof("payload") != "metadata":
            raise InvalidInput("the first message must carry the metadata", field="metadata")
        metadata = first.metadata
        received = await self._intake.receive_stream(
            self._chunks(messages),
            tenant=principal.tenant,
            max_bytes=self._max_upload_bytes,
            title=metadata.title,
            metadata=dict(metadata.metadata),
        )
        document = received.document
        run_id = ""
        if received.changed or document.status.value == "received":
            run_id = await asyncio.to_thread(self._trigger.start, principal.tenant, document.id)
        annotate_call(
            document_id=str(document.id), size=document.size_bytes, deduplicated=not received.changed
        )
        return document_pb2.UploadResponse(
            document=convert.document(document), deduplicated=not received.changed, ingestion_run_id=run_id
        )

    async def _chunks(self, messages: AsyncIterator[document_pb2.UploadRequest]) -> AsyncIterator[bytes]:
        while (message := await self._next(messages)) is not None:
            if message.WhichOneof("payload") == "metadata":
                raise InvalidInput("must be the first message, and only once", field="metadata")
            yield message.chunk

    async def _next(
        self, messages: AsyncIterator[document_pb2.UploadRequest]
    ) -> document_pb2.UploadRequest | None:
        """The next message; None at the end. A client that stalls loses its upload (and slot)."""
        try:
            async with asyncio.timeout(self._idle_timeout_s):
                return await anext(messages)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise DeadlineExceeded(
                f"the upload sent nothing for {self._idle_timeout_s:g} s (UPLOAD_IDLE_TIMEOUT_S): "
                "stream the file's bytes without pausing"
            ) from None

    async def GetDocument(
        self,
        request: document_pb2.GetDocumentRequest,
        context: grpc.aio.ServicerContext[document_pb2.GetDocumentRequest, document_pb2.GetDocumentResponse],
    ) -> document_pb2.GetDocumentResponse:
        principal = current_principal()
        record = await asyncio.to_thread(
            self._documents.get, convert.document_id(request.document_id), tenant=principal.tenant
        )
        return document_pb2.GetDocumentResponse(document=convert.document(record))

    async def ListDocuments(
        self,
        request: document_pb2.ListDocumentsRequest,
        context: grpc.aio.ServicerContext[
            document_pb2.ListDocumentsRequest, document_pb2.ListDocumentsResponse
        ],
    ) -> document_pb2.ListDocumentsResponse:
        principal = current_principal()
        size = request.page_size or 50
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
        after = _decode_token(request.page_token) if request.page_token else None
        statuses = [convert.STATUS_FROM_PROTO[request.status]] if request.status else []
        records = await asyncio.to_thread(
            self._documents.list_documents,
            tenant=principal.tenant,
            statuses=statuses,
            limit=size + 1,
            after=after,
        )
        token = (
            _encode_token(records[size - 1].created_at, records[size - 1].id) if len(records) > size else ""
        )
        return document_pb2.ListDocumentsResponse(
            documents=[convert.document(r) for r in records[:size]], next_page_token=token
        )

    async def DeleteDocument(
        self,
        request: document_pb2.DeleteDocumentRequest,
        context: grpc.aio.ServicerContext[
            document_pb2.DeleteDocumentRequest, document_pb2.DeleteDocumentResponse
        ],
    ) -> document_pb2.DeleteDocumentResponse:
        """Delete the document, its chunks and its blob (unless another document shares it;
        see :mod:`rag.ingestion.intake` for why an upload of the same bytes cannot lose it).

        Idempotent: deleting a missing (or another tenant's) document answers deleted=false.
        Cached results are unreachable at once: the tenant's generation changed with the delete
        (and this process forgets the generation it kept before answering).
        """
        principal = current_principal()
        deleted = await asyncio.to_thread(
            self._intake.delete, [convert.document_id(request.document_id)], tenant=principal.tenant
        )
        if deleted:
            self._on_change(principal.tenant)
        return document_pb2.DeleteDocumentResponse(deleted=bool(deleted))
