"""The generation service behind the gRPC GenerationService.

``stream`` yields tokens as Triton produces them, then one final event with the answer's
citations (each checked against its chunk) and usage. When retrieval finds nothing relevant the
answer says so and the generator is not called: the system never invents an answer without
sources.

The generator is a port (:class:`rag.core.ports.TextGenerator`); searches go through the
:class:`~rag.retrieval.service.RetrievalService`, and each question is logged to its query log.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from rag.core.citations import Citation, extract_citations
from rag.core.errors import InvalidInput
from rag.core.ports import Priority, TextGenerator
from rag.core.prompts import NO_ANSWER, Source, build_prompt
from rag.core.search import QueryRecord, SearchMode, SearchRequest
from rag.retrieval.service import Caller, RetrievalService

# all-MiniLM-L6-v2 cosine similarity below which a chunk is taken as unrelated to the question.
MIN_SIMILARITY = 0.25
MAX_TOKENS_LIMIT = 1024
MAX_TEMPERATURE = 2.0


@dataclass(frozen=True)
class GenerationRequest:
    question: str
    top_k: int = 5
    max_tokens: int = 256
    temperature: float = 0.0
    search: SearchRequest | None = None

    @classmethod
    def validated(
        cls,
        *,
        question: str,
        top_k: int | None,
        max_tokens: int | None,
        temperature: float | None,
        **filters: object,
    ) -> GenerationRequest:
        search = SearchRequest.validated(query=question, top_k=top_k, **filters)  # type: ignore[arg-type]
        tokens = max_tokens or 256
        if not 1 <= tokens <= MAX_TOKENS_LIMIT:
            raise InvalidInput(f"must be between 1 and {MAX_TOKENS_LIMIT}, got {tokens}", field="max_tokens")
        temp = temperature or 0.0
        if not 0.0 <= temp <= MAX_TEMPERATURE:
            raise InvalidInput(f"must be between 0 and {MAX_TEMPERATURE:g}, got {temp}", field="temperature")
        return cls(search.query, search.top_k, tokens, temp, search)


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Final:
    answer: str
    citations: list[Citation]
    prompt_chunks: int
    completion_tokens: int
    time_to_first_token_ms: float | None
    took_ms: float
    grounded: bool = True
    sources: list[Source] = field(default_factory=list)


class GenerationService:
    def __init__(
        self,
        *,
        retrieval: RetrievalService,
        triton: TextGenerator,
        stop: tuple[str, ...] = ("\nQuestion:",),
        default_timeout_s: float = 120.0,
    ) -> None:
        self.retrieval = retrieval
        self.triton = triton
        self.stop = stop
        self.default_timeout_s = default_timeout_s

    async def stream(
        self, caller: Caller, request: GenerationRequest, *, timeout: float | None = None
    ) -> AsyncGenerator[Token | Final, None]:
        began = time.perf_counter()
        timeout = self.default_timeout_s if timeout is None else timeout
        search = request.search or SearchRequest.validated(query=request.question, top_k=request.top_k)
        if search.mode is not SearchMode.HYBRID:
            search = SearchRequest(**{**search.__dict__, "mode": SearchMode.HYBRID})
        result = await self.retrieval.search(caller, search, timeout=timeout)
        relevant = [h for h in result.hits if h.similarity is None or h.similarity >= MIN_SIMILARITY]
        sources = [
            Source(n, h.chunk_id, h.document_id, h.document_title, h.page, h.text)
            for n, h in enumerate(relevant, start=1)
        ]
        if not sources:
            yield Token(NO_ANSWER)
            yield Final(NO_ANSWER, [], 0, 0, None, (time.perf_counter() - began) * 1000, grounded=False)
            await self._record(caller, request, 0, began, cache_hit=result.cache_hit)
            return
        prompt = build_prompt(request.question, sources)
        parts: list[str] = []
        first_token_ms: float | None = None
        async for piece in self.triton.generate(
            prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=self.stop,
            timeout=timeout,
            priority=Priority.GENERATION,
        ):
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - began) * 1000
            parts.append(piece)
            yield Token(piece)
        answer = "".join(parts).strip()
        citations = extract_citations(answer, sources)
        yield Final(
            answer=answer,
            citations=citations,
            prompt_chunks=len(sources),
            completion_tokens=len(parts),
            time_to_first_token_ms=first_token_ms,
            took_ms=(time.perf_counter() - began) * 1000,
            sources=sources,
        )
        await self._record(caller, request, len(citations), began, cache_hit=result.cache_hit)

    async def _record(
        self, caller: Caller, request: GenerationRequest, count: int, began: float, *, cache_hit: bool
    ) -> None:
        await self.retrieval.history.record(
            QueryRecord(
                tenant=caller.tenant,
                username=caller.username,
                request_id=caller.request_id,
                kind="generate",
                query=request.question,
                top_k=request.top_k,
                result_count=count,
                latency_ms=(time.perf_counter() - began) * 1000,
                cache_hit=cache_hit,
                model_version=None,
            )
        )
