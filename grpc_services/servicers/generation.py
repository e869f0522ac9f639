"""``rag.v1.GenerationService``: grounded answers, unary or streamed token by token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc.aio

from grpc_services.context import annotate_call, current_principal, current_request_id
from grpc_services.servicers import convert
from rag.core import grounding as g
from rag.generation.service import Final, GenerationRequest, GenerationService, Token
from rag.proto.rag.v1 import generation_pb2, generation_pb2_grpc
from rag.retrieval.service import Caller


def _request(
    request: generation_pb2.GenerateRequest | generation_pb2.GenerateStreamRequest,
) -> GenerationRequest:
    search = convert.search_request(query=request.question, top_k=request.top_k, filters=request.filters)
    temperature = request.temperature if request.HasField("temperature") else None
    validated = GenerationRequest.validated(
        question=request.question, top_k=request.top_k, max_tokens=request.max_tokens, temperature=temperature
    )
    return GenerationRequest(
        validated.question,
        validated.top_k,
        validated.max_tokens,
        validated.temperature,
        search,
        request.strict,
        request.quotes_only,
    )


def _grounding(value: g.Grounding | None) -> generation_pb2.Grounding | None:
    if value is None:
        return None
    return generation_pb2.Grounding(
        answer=value.answer,
        sentences=[
            generation_pb2.AnswerSentence(
                text=s.text,
                char_start=s.start,
                char_end=s.end,
                support=s.support,
                supported=s.supported,
                evidence=convert.citation(s.evidence) if s.evidence is not None else None,
            )
            for s in value.sentences
        ],
        grounded_fraction=value.grounded_fraction,
        extractive=value.extractive,
        dropped_sentences=value.dropped,
        threshold=value.threshold,
        verifier_model_version=value.verifier_model_version,
    )


def _summary(final: Final, max_tokens: int) -> generation_pb2.GenerationSummary:
    if not final.grounded:
        reason = generation_pb2.FINISH_REASON_NO_CONTEXT
    elif final.completion_tokens >= max_tokens:
        reason = generation_pb2.FINISH_REASON_LENGTH
    else:
        reason = generation_pb2.FINISH_REASON_STOP
    return generation_pb2.GenerationSummary(
        usage=generation_pb2.Usage(
            completion_tokens=final.completion_tokens, context_chunks=final.prompt_chunks
        ),
        finish_reason=reason,
        took_ms=final.took_ms,
    )


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, generation: GenerationService) -> None:
        self._generation = generation

    def _caller(self) -> Caller:
        principal = current_principal()
        return Caller(principal.tenant, principal.username, current_request_id())

    async def Generate(
        self,
        request: generation_pb2.GenerateRequest,
        context: grpc.aio.ServicerContext[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse],
    ) -> generation_pb2.GenerateResponse:
        query = _request(request)
        final: Final | None = None
        async for event in self._generation.stream(self._caller(), query, timeout=context.time_remaining()):
            if isinstance(event, Final):
                final = event
        assert final is not None
        annotate_call(citations=len(final.citations), completion_tokens=final.completion_tokens)
        return generation_pb2.GenerateResponse(
            answer=final.answer,
            citations=[convert.citation(c) for c in final.citations],
            summary=_summary(final, query.max_tokens),
            grounding=_grounding(final.grounding),
        )

    async def GenerateStream(
        self,
        request: generation_pb2.GenerateStreamRequest,
        context: grpc.aio.ServicerContext[
            generation_pb2.GenerateStreamRequest, generation_pb2.GenerateStreamResponse
        ],
    ) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        """Tokens (as Triton produces them, or sentence by sentence once supported when the
        request is strict), then the citations, the grounding and the summary.

        A client that goes away cancels this handler; closing the event stream cancels the
        Triton stream, so the generator stops within a token.
        """
        query = _request(request)
        events = self._generation.stream(self._caller(), query, timeout=context.time_remaining())
        try:
            async for event in events:
                if isinstance(event, Token):
                    yield generation_pb2.GenerateStreamResponse(token=event.text)
                else:
                    annotate_call(citations=len(event.citations), completion_tokens=event.completion_tokens)
                    yield generation_pb2.GenerateStreamResponse(
                        citations=generation_pb2.CitationList(
                            citations=[convert.citation(c) for c in event.citations]
                        )
                    )
                    grounding = _grounding(event.grounding)
                    if grounding is not None:
                        yield generation_pb2.GenerateStreamResponse(grounding=grounding)
                    yield generation_pb2.GenerateStreamResponse(summary=_summary(event, query.max_tokens))
        finally:
            await events.aclose()
