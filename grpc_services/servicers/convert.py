"""Proto <-> domain translation shared by the servicers (no logic beyond mapping)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from rag.core.citations import Citation
from rag.core.documents import DocumentRecord, DocumentStatus
from rag.core.errors import InvalidInput
from rag.core.search import SearchHit, SearchMode, SearchRequest
from rag.proto.rag.v1 import common_pb2, document_pb2, search_pb2

STATUS_TO_PROTO: dict[DocumentStatus, common_pb2.DocumentStatus] = {
    status: getattr(common_pb2, f"DOCUMENT_STATUS_{status.name}") for status in DocumentStatus
}
STATUS_FROM_PROTO = {value: status for status, value in STATUS_TO_PROTO.items()}
MODE_FROM_PROTO: dict[int, SearchMode] = {
    search_pb2.SEARCH_MODE_UNSPECIFIED: SearchMode.HYBRID,
    search_pb2.SEARCH_MODE_HYBRID: SearchMode.HYBRID,
    search_pb2.SEARCH_MODE_DENSE: SearchMode.DENSE,
    search_pb2.SEARCH_MODE_FULLTEXT: SearchMode.FULLTEXT,
}


def document_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a document id (a UUID)", field="document_id") from None


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def document(record: DocumentRecord) -> document_pb2.Document:
    return document_pb2.Document(
        id=str(record.id),
        title=record.title,
        source_uri=record.source_uri,
        content_hash=record.content_hash,
        size_bytes=record.size_bytes,
        mime_type=record.mime_type,
        status=STATUS_TO_PROTO[record.status],
        error_reason=record.error_reason or "",
        attempts=record.attempts,
        embedding_model_version=record.embedding_model_version or "",
        metadata=record.metadata,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )


def search_request(
    *,
    query: str,
    top_k: int,
    filters: common_pb2.SearchFilters,
    rerank: bool | None = None,
    mode: int = search_pb2.SEARCH_MODE_UNSPECIFIED,
) -> SearchRequest:
    return SearchRequest.validated(
        query=query,
        top_k=top_k,
        mode=MODE_FROM_PROTO.get(mode, SearchMode.HYBRID),
        rerank=rerank,
        document_ids=tuple(filters.document_ids),
        metadata=dict(filters.metadata),
        created_after=filters.created_after.ToDatetime(UTC) if filters.HasField("created_after") else None,
        created_before=filters.created_before.ToDatetime(UTC) if filters.HasField("created_before") else None,
    )


def search_result(hit: SearchHit) -> common_pb2.SearchResult:
    return common_pb2.SearchResult(
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        document_title=hit.document_title,
        text=hit.text,
        page=hit.page or 0,
        score=hit.score,
        char_start=hit.char_start,
        char_end=hit.char_end,
        heading=hit.heading or "",
    )


def citation(value: Citation) -> common_pb2.Citation:
    return common_pb2.Citation(
        chunk_id=value.chunk_id,
        document_id=value.document_id,
        document_title=value.title,
        page=value.page or 0,
        quote=value.quote,
        char_start=value.quote_start,
        char_end=value.quote_end,
        support=value.support,
    )
