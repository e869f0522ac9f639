"""The generation service behind the gRPC GenerationService.

``stream`` yields the answer's tokens, then one final event with its grounding (each sentence
graded by the support model against the source sentence that best supports it, see
:mod:`rag.generation.grounder`), its citations and usage. Without ``strict`` tokens pass through as
Triton produces them; with it, each sentence is graded as soon as it is complete and its tokens
are sent only when it is supported. When retrieval finds nothing relevant the answer says so and
the generator is not called: the system never invents an answer without sources.

The generator is a port (:class:`rag.core.ports.TextGenerator`); searches go through the
:class:`~rag.retrieval.service.RetrievalService`, and each question is logged to its query log.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from rag.core import grounding as g
from rag.core.citations import Citation
from rag.core.errors import InvalidInput
from rag.core.ports import Priority, TextGenerator
from rag.core.prompts import NO_ANSWER, Source, build_prompt
from rag.core.search import QueryRecord, SearchMode, SearchRequest
from rag.generation.grounder import Grounder
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
    strict: bool = False
    quotes_only: bool = False

    @classmethod
    def validated(
        cls,
        *,
        question: str,
        top_k: int | None,
        max_tokens: int | None,
        temperature: float | None,
        strict: bool = False,
        quotes_only: bool = False,
        **filters: object,
    ) -> GenerationRequest:
        search = SearchRequest.validated(query=question, top_k=top_k, **filters)  # type: ignore[arg-type]
        tokens = max_tokens or 256
        if not 1 <= tokens <= MAX_TOKENS_LIMIT:
            raise InvalidInput(f"must be between 1 and {MAX_TOKENS_LIMIT}, got {tokens}", field="max_tokens")
        temp = temperature or 0.0
        if not 0.0 <= temp <= MAX_TEMPERATURE:
            raise InvalidInput(f"must be between 0 and {MAX_TEMPERATURE:g}, got {temp}", field="temperature")
        return cls(search.query, search.top_k, tokens, temp, search, strict, quotes_only)


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
    grounding: g.Grounding | None = None


class GenerationService:
    def __init__(
        self,
        *,
        retrieval: RetrievalService,
        triton: TextGenerator,
        grounder: Grounder,
        stop: tuple[str, ...] = ("\nQuestion:",),
        default_timeout_s: float = 120.0,
    ) -> None:
        self.retrieval = retrieval
        self.triton = triton
        self.grounder = grounder
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
            yield Final(
                NO_ANSWER,
                [],
                0,
                0,
                None,
                (time.perf_counter() - began) * 1000,
                grounded=False,
                grounding=self.grounder.unanswered(NO_ANSWER),
            )
            await self._record(caller, request, 0, began, cache_hit=result.cache_hit)
            return
        candidates = g.evidence(sources)
        if request.quotes_only:
            grounding = await self.grounder.finish(
                request.question, "", [], candidates, strict=True, timeout=timeout
            )
            yield Token(grounding.answer)
            yield self._final(grounding, sources, 0, None, began)
            await self._record(caller, request, len(grounding.citations), began, cache_hit=result.cache_hit)
            return
        prompt = build_prompt(request.question, sources)
        parts: list[str] = []
        graded: list[g.GradedSentence] = []
        graded_to = 0  # strict: the text before this offset is graded
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
            if not request.strict:
                yield Token(piece)
                continue
            text = "".join(parts)
            complete = [s for s in g.sentence_spans(text)[:-1] if s.start >= graded_to]
            if complete:
                graded_to = complete[-1].end
                for sentence in await self.grounder.grade(text, complete, candidates, timeout=timeout):
                    graded.append(sentence)
                    if sentence.supported:
                        yield Token(sentence.text + " ")
        raw = "".join(parts)
        if request.strict:
            rest = [s for s in g.sentence_spans(raw) if s.start >= graded_to]
            for sentence in await self.grounder.grade(raw, rest, candidates, timeout=timeout):
                graded.append(sentence)
                if sentence.supported:
                    yield Token(sentence.text + " ")
            answer = raw
        else:
            answer = raw.strip()
            graded = await self.grounder.grade(answer, g.sentence_spans(answer), candidates, timeout=timeout)
        grounding = await self.grounder.finish(
            request.question, answer, graded, candidates, strict=request.strict, timeout=timeout
        )
        if request.strict and grounding.extractive:
            yield Token(grounding.answer)
        yield self._final(grounding, sources, len(parts), first_token_ms, began)
        await self._record(caller, request, len(grounding.citations), began, cache_hit=result.cache_hit)

    @staticmethod
    def _final(
        grounding: g.Grounding, sources: list[Source], tokens: int, first_token_ms: float | None, began: float
    ) -> Final:
        return Final(
            answer=grounding.answer,
            citations=grounding.citations,
            prompt_chunks=len(sources),
            completion_tokens=tokens,
            time_to_first_token_ms=first_token_ms,
            took_ms=(time.perf_counter() - began) * 1000,
            sources=sources,
            grounding=grounding,
        )

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
