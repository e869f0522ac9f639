"""Grounded generation on the real stack: streamed tokens, verified citations, no invention."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.cache import TieredCache
from rag.adapters.postgres.search import SearchRepository
from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.prompts import NO_ANSWER
from rag.generation.grounder import Grounder, GroundingPolicy
from rag.generation.service import Final, GenerationRequest, GenerationService, Token
from rag.generation.support import EmbeddingSupport
from rag.retrieval.service import Caller, RetrievalService
from rag.settings import Settings

pytestmark = pytest.mark.integration


def generate(
    settings: Settings,
    pool: ConnectionPool,
    tmp_path: Path,
    caller: Caller,
    question: str,
    *,
    stop_after: int | None = None,
) -> list[Any]:
    async def go() -> list[Any]:
        cache = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "l3")
        async with TritonClient(TritonOptions(settings.TRITON_GRPC_URL)) as triton:
            service = GenerationService(
                retrieval=RetrievalService(pool=pool, triton=triton, cache=cache),
                triton=triton,
                grounder=Grounder(
                    EmbeddingSupport(triton), GroundingPolicy(threshold=settings.GROUNDING_SUPPORT_THRESHOLD)
                ),
            )
            request = GenerationRequest.validated(question=question, top_k=3, max_tokens=40, temperature=0.0)
            events: list[Any] = []
            stream = service.stream(caller, request)
            async for event in stream:
                events.append(event)
                if stop_after is not None and len(events) >= stop_after:
                    await stream.aclose()  # the client went away: cancel the Triton stream
                    break
            await cache.close()
            return events

    return asyncio.run(go())


def test_answer_streams_and_cites_its_source(
    settings: Settings, pool: ConnectionPool, tmp_path: Path, topics_tenant: tuple[str, dict[str, str]]
) -> None:
    tenant, ids = topics_tenant
    events = generate(
        settings, pool, tmp_path, Caller(tenant), "Which vitamin does sunlight produce in the skin?"
    )
    tokens = [e for e in events if isinstance(e, Token)]
    final = events[-1]
    assert isinstance(final, Final) and final.grounding is not None and len(tokens) >= 2
    generated = "".join(t.text for t in tokens).strip()
    # The answer as generated, or (no sentence supported) quotes of the sources.
    assert final.answer == generated or final.grounding.extractive
    assert final.citations, final.answer
    texts = SearchRepository(pool).hits([c.chunk_id for c in final.citations], tenant=tenant)
    for citation in final.citations:
        assert texts[citation.chunk_id].text[citation.quote_start : citation.quote_end] == citation.quote
        assert citation.support >= settings.GROUNDING_SUPPORT_THRESHOLD
    assert ids["vitamin-d.txt"] in {s.document_id for s in final.sources}


def test_nothing_relevant_means_no_invented_answer(
    settings: Settings, pool: ConnectionPool, tmp_path: Path, topics_tenant: tuple[str, dict[str, str]]
) -> None:
    events = generate(
        settings,
        pool,
        tmp_path,
        Caller(topics_tenant[0]),
        "Who won the 1998 football world cup final in Paris?",
    )
    final = events[-1]
    assert isinstance(final, Final)
    assert final.answer == NO_ANSWER and final.citations == [] and not final.grounded


def test_cancelled_stream_stops_and_the_next_request_works(
    settings: Settings, pool: ConnectionPool, tmp_path: Path, topics_tenant: tuple[str, dict[str, str]]
) -> None:
    caller = Caller(topics_tenant[0])
    events = generate(
        settings, pool, tmp_path, caller, "How do vaccines train the immune system?", stop_after=2
    )
    assert len(events) == 2 and all(isinstance(e, Token) for e in events)
    again = generate(settings, pool, tmp_path, caller, "How do vaccines train the immune system?")
    assert isinstance(again[-1], Final) and again[-1].completion_tokens >= 1
