"""``rag.v1.SearchService``: hybrid search within the caller's tenant."""

from __future__ import annotations

import grpc.aio

from grpc_services.context import annotate_call, current_principal, current_request_id
from grpc_services.servicers import convert
from rag.proto.rag.v1 import search_pb2, search_pb2_grpc
from rag.retrieval.service import Caller, RetrievalService


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, retrieval: RetrievalService) -> None:
        self._retrieval = retrieval

    async def Search(
        self,
        request: search_pb2.SearchRequest,
        context: grpc.aio.ServicerContext[search_pb2.SearchRequest, search_pb2.SearchResponse],
    ) -> search_pb2.SearchResponse:
        principal = current_principal()
        query = convert.search_request(
            query=request.query,
            top_k=request.top_k,
            filters=request.filters,
            rerank=request.rerank if request.HasField("rerank") else None,
            mode=request.mode,
        )
        remaining = context.time_remaining()
        result = await self._retrieval.search(
            Caller(principal.tenant, principal.username, current_request_id()), query, timeout=remaining
        )
        annotate_call(result_count=len(result.hits), cache_hit=result.cache_hit)
        return search_pb2.SearchResponse(
            results=[convert.search_result(hit) for hit in result.hits],
            embedding_model_version=result.model_version,
            cache_hit=result.cache_hit,
            took_ms=result.took_ms,
        )
