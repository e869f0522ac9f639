"""GenerationService over in-memory ports: the answer streamed token by token with citations
checked against their chunks, and a refusal, without calling the generator, when retrieval finds
nothing relevant."""

from __future__ import annotations

import asyncio

from rag.core.citations import verify
from rag.core.prompts import NO_ANSWER
from rag.generation.service import MIN_SIMILARITY, Final, GenerationRequest, GenerationService, Token
from rag.retrieval.service import Caller
from tests.unit.retrieval.test_service import Search, unit

QUESTION = "How long do solar panels last?"
CHUNK = "Solar panels last for decades. They need little care."


def ask(search: Search, question: str = QUESTION, *, max_tokens: int = 256) -> list[Token | Final]:
    service = GenerationService(retrieval=search.service, triton=search.models)
    request = GenerationRequest.validated(question=question, top_k=5, max_tokens=max_tokens, temperature=0.0)

    async def events() -> list[Token | Final]:
        return [event async for event in service.stream(Caller("acme", "ann", "req-2"), request)]

    return asyncio.run(events())


def test_the_answer_streams_and_cites_the_chunk_it_came_from() -> None:
    search = Search()
    search.models.vectors[QUESTION] = unit(1.0)
    chunk = search.index.add("acme", CHUNK, vector=unit(1.0))
    search.index.add("globex", "Solar panels last ten years at most.", vector=unit(1.0))
    search.models.answer = ["They", " last", " for", " decades", " [1]."]
    *tokens, final = ask(search)
    assert [t.text for t in tokens if isinstance(t, Token)] == search.models.answer
    assert isinstance(final, Final)
    assert (final.answer, final.grounded, final.prompt_chunks, final.completion_tokens) == (
        "They last for decades [1].",
        True,
        1,
        5,
    )
    [citation] = final.citations
    assert (citation.number, citation.chunk_id, citation.document_id) == (
        1,
        chunk.chunk_id,
        str(chunk.document_id),
    )
    assert citation.quote == "Solar panels last for decades." and verify(citation, CHUNK)
    [prompt] = search.models.prompts
    assert f"[1] (a title) {CHUNK}" in prompt and f"Question: {QUESTION}" in prompt
    assert "ten years" not in prompt  # another tenant's chunk is never a source
    assert [(r.kind, r.result_count) for r in search.log.records] == [("search", 1), ("generate", 1)]


def test_max_tokens_reaches_the_generator() -> None:
    search = Search()
    search.index.add("acme", CHUNK)
    search.models.answer = ["Solar", " panels", " last", " decades", "."]
    *tokens, final = ask(search, max_tokens=2)
    assert isinstance(final, Final) and final.answer == "Solar panels" and len(tokens) == 2


def test_nothing_retrieved_is_a_refusal_without_calling_the_generator() -> None:
    search = Search()
    search.index.add("globex", CHUNK)  # only another tenant holds an answer
    search.models.answer = ["Invented", " answer"]
    events = ask(search)
    assert events[0] == Token(NO_ANSWER)
    final = events[1]
    assert isinstance(final, Final) and len(events) == 2
    assert (final.answer, final.grounded, final.citations, final.sources) == (NO_ANSWER, False, [], [])
    assert search.models.prompts == []
    assert [(r.kind, r.result_count) for r in search.log.records] == [("search", 0), ("generate", 0)]


def test_chunks_unrelated_to_the_question_are_no_sources() -> None:
    search = Search()
    search.models.vectors[QUESTION] = unit(1.0)
    # It shares the question's words, so full-text search finds it, yet its vector says it is
    # about something else: below MIN_SIMILARITY it is not a source.
    search.index.add("acme", "How long do panels of a fence last?", vector=unit(0.1, 1.0))
    assert float(unit(0.1, 1.0) @ unit(1.0)) < MIN_SIMILARITY
    search.models.answer = ["Invented", " answer"]
    *_, final = ask(search)
    assert isinstance(final, Final) and (final.answer, final.grounded) == (NO_ANSWER, False)
    assert search.models.prompts == []
