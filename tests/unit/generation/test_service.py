"""GenerationService over in-memory ports: the answer streamed token by token, each sentence
graded against the source sentence that best supports it (unsupported ones flagged, dropped when
strict, quotes when none is supported), and a refusal, without calling the generator, when
retrieval finds nothing relevant."""

from __future__ import annotations

import asyncio

import pytest

from rag.core.prompts import NO_ANSWER
from rag.generation.grounder import Grounder, GroundingPolicy
from rag.generation.service import MIN_SIMILARITY, Final, GenerationRequest, GenerationService, Token
from rag.retrieval.service import Caller
from tests.unit.fakes import FakeSupport
from tests.unit.retrieval.test_service import Search, unit

QUESTION = "How long do solar panels last?"
CHUNK = "Solar panels last for decades. They need little care."


SUPPORTED = {("They last for decades.", "Solar panels last for decades."): 0.9}


def ask(
    search: Search,
    question: str = QUESTION,
    *,
    max_tokens: int = 256,
    strict: bool = False,
    support: FakeSupport | None = None,
) -> list[Token | Final]:
    scorer = support or FakeSupport(dict(SUPPORTED))
    service = GenerationService(
        retrieval=search.service,
        triton=search.models,
        grounder=Grounder(scorer, GroundingPolicy(threshold=0.5)),
    )
    request = GenerationRequest.validated(
        question=question, top_k=5, max_tokens=max_tokens, temperature=0.0, strict=strict
    )

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
    assert citation.quote == "Solar panels last for decades."
    assert CHUNK[citation.quote_start : citation.quote_end] == citation.quote
    assert citation.support == pytest.approx(0.9)
    assert final.grounding is not None and final.grounding.grounded_fraction == 1.0
    [prompt] = search.models.prompts
    assert f"[1] (a title) {CHUNK}" in prompt and f"Question: {QUESTION}" in prompt
    assert "ten years" not in prompt  # another tenant's chunk is never a source
    assert [(r.kind, r.result_count) for r in search.log.records] == [("search", 1), ("generate", 1)]


def test_max_tokens_reaches_the_generator() -> None:
    search = Search()
    search.index.add("acme", CHUNK)
    search.models.answer = ["Solar", " panels", " last", " decades", "."]
    support = FakeSupport({("Solar panels", "Solar panels last for decades."): 0.9})
    *tokens, final = ask(search, max_tokens=2, support=support)
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


INVENTED = " It also cures diabetes [1]."


def solar(search: Search) -> None:
    search.models.vectors[QUESTION] = unit(1.0)
    search.index.add("acme", CHUNK, vector=unit(1.0))
    search.models.answer = [
        "They",
        " last",
        " for",
        " decades",
        " [1].",
        " It",
        " also",
        " cures",
        " diabetes",
        " [1].",
    ]


def test_an_invented_sentence_is_flagged_and_cites_nothing() -> None:
    search = Search()
    solar(search)
    *tokens, final = ask(search)
    assert "".join(t.text for t in tokens if isinstance(t, Token)).endswith(INVENTED)  # streamed as made
    assert isinstance(final, Final) and final.grounding is not None
    assert final.answer == "They last for decades [1]." + INVENTED
    first, second = final.grounding.sentences
    assert (first.supported, second.supported) == (True, False)
    assert second.support == pytest.approx(0.05) and second.evidence is not None  # what was checked
    assert final.grounding.grounded_fraction == pytest.approx(0.5)
    assert [c.quote for c in final.citations] == ["Solar panels last for decades."]


def test_strict_never_emits_an_unsupported_sentence() -> None:
    search = Search()
    solar(search)
    *tokens, final = ask(search, strict=True)
    streamed = "".join(t.text for t in tokens if isinstance(t, Token))
    assert "diabetes" not in streamed and streamed.strip() == "They last for decades [1]."
    assert isinstance(final, Final) and final.grounding is not None
    assert final.answer == "They last for decades [1]."
    assert [s.supported for s in final.grounding.sentences] == [True]
    assert final.grounding.dropped == 1 and not final.grounding.extractive


def test_strict_grades_each_sentence_as_soon_as_it_is_complete() -> None:
    search = Search()
    solar(search)
    support = FakeSupport(dict(SUPPORTED))
    ask(search, strict=True, support=support)
    # One call for the first sentence once the second began, one for the rest at the end.
    assert [len({claim for claim, _ in call}) for call in support.calls] == [1, 1]
    assert support.calls[0][0][0] == "They last for decades."


@pytest.mark.parametrize("strict", [False, True])
def test_no_supported_sentence_makes_the_answer_quotes(strict: bool) -> None:
    search = Search()
    solar(search)
    search.models.answer = [" It", " also", " cures", " diabetes", " [1]."]
    support = FakeSupport({(QUESTION, "Solar panels last for decades."): 0.8})
    *tokens, final = ask(search, strict=strict, support=support)
    assert isinstance(final, Final) and final.grounding is not None
    assert final.grounding.extractive and final.grounding.dropped == 1
    assert final.answer.startswith('"Solar panels last for decades." [1]')
    assert "diabetes" not in final.answer
    assert all(s.supported and s.support == 1.0 for s in final.grounding.sentences)
    streamed = "".join(t.text for t in tokens if isinstance(t, Token))
    assert ("diabetes" in streamed) is not strict  # strict streams only the quotes


def test_quotes_only_answers_without_the_generator() -> None:
    search = Search()
    solar(search)
    support = FakeSupport({(QUESTION, "They need little care."): 0.7})
    service = GenerationService(
        retrieval=search.service, triton=search.models, grounder=Grounder(support, GroundingPolicy(0.5, 1))
    )
    request = GenerationRequest.validated(
        question=QUESTION, top_k=5, max_tokens=64, temperature=0.0, quotes_only=True
    )

    async def events() -> list[Token | Final]:
        return [event async for event in service.stream(Caller("acme", "ann", "req-3"), request)]

    token, final = asyncio.run(events())
    assert token == Token('"They need little care." [1]')
    assert isinstance(final, Final) and final.grounding is not None and final.grounding.extractive
    assert final.answer == token.text and final.completion_tokens == 0
    assert search.models.prompts == []


def test_strict_streams_exactly_the_final_answer() -> None:
    search = Search()
    solar(search)
    search.models.answer = ["They last for decades [1].", " They need little care [1]."]
    table = dict(SUPPORTED) | {("They need little care.", "They need little care."): 0.9}
    *tokens, final = ask(search, strict=True, support=FakeSupport(table))
    streamed = "".join(t.text for t in tokens if isinstance(t, Token))
    assert isinstance(final, Final) and final.grounding is not None and not final.grounding.extractive
    assert streamed.strip() == final.answer == "They last for decades [1]. They need little care [1]."
