"""The search service behind the gRPC SearchService and the generation service.

Dense and full-text retrieval run concurrently (the BM25 query does not wait for the query
embedding), are fused by reciprocal rank fusion, optionally reranked by the Triton
cross-encoder, and cached at three levels under keys that carry the tenant, the tenant's
document generation, the embedding model version and the cache epoch (renewed by a restore), so
a change never serves stale results.

Its collaborators are ports (:mod:`rag.core.ports`): the search index, the query models, the
result cache, the index versions and the query log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import FailedPrecondition
from rag.core.ports import IndexVersions, Priority, QueryLog, QueryModels, ResultCache, SearchIndex
from rag.core.ranking import HYBRID_RRF_K, reciprocal_rank_fusion
from rag.core.search import (
    Filters,
    QueryRecord,
    SearchHit,
    SearchMode,
    SearchRequest,
    SearchResult,
    cache_key,
)

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# How many fused candidates the cross-encoder reorders (settings: RERANK_DEPTH).
DEFAULT_RERANK_DEPTH = 30


@dataclass(frozen=True)
class Caller:
    tenant: str
    username: str | None = None
    request_id: str | None = None


class RetrievalService:
    def __init__(
        self,
        *,
        triton: QueryModels,
        cache: ResultCache,
        index: SearchIndex | None = None,
        versions: IndexVersions | None = None,
        history: QueryLog | None = None,
        pool: ConnectionPool | None = None,
        rerank_depth: int = DEFAULT_RERANK_DEPTH,
        rerank_by_default: bool = False,
    ) -> None:
        """``triton`` embeds and reranks queries. The search index, the versions and the query
        log not given are the PostgreSQL ones on ``pool`` (then required): versions read at
        every search unless a started listener is given, history written at once unless a
        started writer is given. The API passes both (grpc_services.app)."""
        if index is None or versions is None or history is None:
            if pool is None:
                raise TypeError("give a pool, or the search index, versions and history")
            from rag.adapters.postgres.history import QueryHistory
            from rag.adapters.postgres.search import SearchRepository
            from rag.adapters.postgres.search_versions import SearchVersions

            index = SearchRepository(pool) if index is None else index
            versions = SearchVersions(pool) if versions is None else versions
            history = QueryHistory(pool) if history is None else history
        self.index = index
        self.triton = triton
        self.cache = cache
        self.versions = versions
        self.history = history
        self.rerank_depth = rerank_depth
        self.rerank_by_default = rerank_by_default

    async def _versions(self, tenant: str) -> tuple[str, int, str]:
        model_version, generation, epoch = await self.versions.current(tenant)
        if model_version is None:
            raise FailedPrecondition("the search index is empty: ingest documents first")
        return model_version, generation, epoch

    async def search(
        self, caller: Caller, request: SearchRequest, *, timeout: float | None = None
    ) -> SearchResult:
        began = time.perf_counter()
        if request.rerank is None:  # the default: rerank when a reranker serves
            request = replace(request, rerank=self.rerank_by_default and await self.triton.can_rerank())
        model_version, generation, epoch = await self._versions(caller.tenant)
        key = cache_key("search", [caller.tenant, generation, model_version, asdict(request)], epoch=epoch)
        # The query's embedding is cached on its own (the same text with other filters or
        # top_k reuses it); both keys are looked up in one round trip.
        vector_key = cache_key("embedding", [caller.tenant, model_version, request.query], epoch=epoch)
        cached, cached_vector = await self.cache.get_many([key, vector_key])
        if cached is not None:
            hits = tuple(SearchHit(**hit) for hit in json.loads(cached))
            result = SearchResult(hits, model_version, True, (time.perf_counter() - began) * 1000)
        else:
            vector = None if cached_vector is None else np.frombuffer(cached_vector, dtype=np.float32)
            hits, embedded = await self._search(caller, request, model_version, vector, timeout)
            writes = {key: json.dumps([asdict(h) for h in hits]).encode()}
            if embedded is not None and cached_vector is None:
                writes[vector_key] = embedded.astype(np.float32).tobytes()
            self.cache.set_many_soon(writes)
            result = SearchResult(hits, model_version, False, (time.perf_counter() - began) * 1000)
        await self.history.record(
            QueryRecord(
                tenant=caller.tenant,
                username=caller.username,
                request_id=caller.request_id,
                kind="search",
                query=request.query,
                top_k=request.top_k,
                result_count=len(result.hits),
                latency_ms=result.took_ms,
                cache_hit=result.cache_hit,
                model_version=model_version,
            )
        )
        return result

    async def _search(
        self,
        caller: Caller,
        request: SearchRequest,
        model_version: str,
        vector: NDArray[np.float32] | None,
        timeout: float | None,
    ) -> tuple[tuple[SearchHit, ...], NDArray[np.float32] | None]:
        """The hits, and the query's embedding when dense retrieval ran."""
        filters = Filters.of(request)
        depth = max(50, 2 * request.top_k)
        tenant = caller.tenant
        if request.mode is SearchMode.FULLTEXT:
            vector = None  # no dense retrieval, no similarities: the same answer cached or not

        async def dense() -> list[tuple[int, float]]:
            nonlocal vector
            if vector is None:
                vector = (
                    await self.triton.embed([request.query], priority=Priority.INTERACTIVE, timeout=timeout)
                )[0]
            return await asyncio.to_thread(
                self.index.dense,
                tenant=tenant,
                version=model_version,
                vector=vector,
                k=depth,
                filters=filters,
            )

        async def lexical() -> list[tuple[int, float]]:
            return await asyncio.to_thread(
                self.index.lexical,
                tenant=tenant,
                version=model_version,
                query=request.query,
                k=depth,
                filters=filters,
            )

        ranked: list[tuple[int, float]]
        if request.mode is SearchMode.DENSE:
            ranked = [(i, 1.0 - d) for i, d in await dense()]
        elif request.mode is SearchMode.FULLTEXT:
            ranked = await lexical()
        else:
            dense_hits, lexical_hits = await asyncio.gather(dense(), lexical())
            ranked = reciprocal_rank_fusion(
                [[i for i, _ in dense_hits], [i for i, _ in lexical_hits]], k=HYBRID_RRF_K
            )
        if request.rerank and ranked:
            ranked = await self._rerank(request.query, ranked, tenant=tenant, timeout=timeout)
        top = ranked[: request.top_k]
        details = await asyncio.to_thread(self.index.hits, [i for i, _ in top], tenant=tenant, vector=vector)
        hits = tuple(
            SearchHit(
                chunk_id=i,
                document_id=str(details[i].document_id),
                document_title=details[i].document_title,
                text=details[i].text,
                page=details[i].page,
                score=score,
                char_start=details[i].char_start,
                char_end=details[i].char_end,
                heading=details[i].heading,
                similarity=details[i].similarity,
            )
            for i, score in top
            if i in details
        )
        return hits, vector

    async def _rerank(
        self, query: str, ranked: list[tuple[int, float]], *, tenant: str, timeout: float | None
    ) -> list[tuple[int, float]]:
        """The first ``rerank_depth`` candidates in the cross-encoder's order, the rest after them
        in the search's order (as the trainings judge a reranker: rag.training.evaluation).
        Scores stay "higher is better" across the whole list: the rest rank below every
        reranked score."""
        head = [i for i, _ in ranked[: self.rerank_depth]]
        texts = await asyncio.to_thread(self.index.hits, head, tenant=tenant)
        ordered = [i for i in head if i in texts]
        scores = await self.triton.rerank(
            query, [texts[i].text for i in ordered], priority=Priority.INTERACTIVE, timeout=timeout
        )
        reranked = sorted(zip(ordered, (float(x) for x in scores), strict=True), key=lambda r: -r[1])
        floor = min((s for _, s in reranked), default=0.0)
        rest = [i for i, _ in ranked[self.rerank_depth :]]
        return reranked + [(i, floor - n) for n, i in enumerate(rest, start=1)]
