"""A typed Python client for RAG System's gRPC API.

    client = RagClient("127.0.0.1:28051")
    client.login("alice", password)
    doc = client.upload(Path("report.pdf"))
    for event in client.ask("What does the report conclude?"):
        ...

Errors arrive as :class:`grpc.RpcError` with the server's status and a message saying what to
fix. One channel per client; every call has a deadline.

It imports only the generated protos and grpc, so applications can depend on it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from rag.proto.rag.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    document_pb2,
    document_pb2_grpc,
    feedback_pb2,
    feedback_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

CHUNK_BYTES = 256 * 1024
MODES = {
    "hybrid": search_pb2.SEARCH_MODE_HYBRID,
    "dense": search_pb2.SEARCH_MODE_DENSE,
    "fulltext": search_pb2.SEARCH_MODE_FULLTEXT,
}


@dataclass
class Tokens:
    access: str
    refresh: str = ""


class RagClient:
    def __init__(
        self,
        target: str,
        *,
        tokens: Tokens | None = None,
        root_certificates: bytes | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", 64 * 2**20),
            ("grpc.max_send_message_length", 8 * 2**20),
        ]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.tokens = tokens
        self.timeout_s = timeout_s
        self._auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self._documents = document_pb2_grpc.DocumentServiceStub(self.channel)
        self._search = search_pb2_grpc.SearchServiceStub(self.channel)
        self._feedback = feedback_pb2_grpc.FeedbackServiceStub(self.channel)
        self._generation = generation_pb2_grpc.GenerationServiceStub(self.channel)
        self._models = model_pb2_grpc.ModelServiceStub(self.channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RagClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens.access}"),) if self.tokens else ()

    # -- auth ---------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> auth_pb2.LoginResponse:
        response = self._auth.Login(
            auth_pb2.LoginRequest(username=username, password=password), timeout=self.timeout_s
        )
        self.tokens = Tokens(response.access_token, response.refresh_token)
        return response

    def refresh(self) -> None:
        if not self.tokens or not self.tokens.refresh:
            raise ValueError("log in first")
        response = self._auth.Refresh(
            auth_pb2.RefreshRequest(refresh_token=self.tokens.refresh), timeout=self.timeout_s
        )
        self.tokens = Tokens(response.access_token, self.tokens.refresh)

    # -- documents ----------------------------------------------------------------------------
    def upload(
        self,
        path: Path,
        *,
        title: str = "",
        metadata: dict[str, str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        timeout_s: float = 600.0,
    ) -> document_pb2.UploadResponse:
        total = path.stat().st_size

        def messages() -> Iterator[document_pb2.UploadRequest]:
            yield document_pb2.UploadRequest(
                metadata=document_pb2.UploadMetadata(filename=path.name, title=title, metadata=metadata or {})
            )
            sent = 0
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    sent += len(chunk)
                    yield document_pb2.UploadRequest(chunk=chunk)
                    if progress:
                        progress(sent, total)

        return self._documents.Upload(messages(), metadata=self._metadata(), timeout=timeout_s)

    def document(self, document_id: str) -> document_pb2.Document:
        response = self._documents.GetDocument(
            document_pb2.GetDocumentRequest(document_id=document_id),
            metadata=self._metadata(),
            timeout=self.timeout_s,
        )
        return response.document

    def documents(
        self,
        *,
        status: common_pb2.DocumentStatus = common_pb2.DOCUMENT_STATUS_UNSPECIFIED,
        page_size: int = 50,
    ) -> Iterator[document_pb2.Document]:
        token = ""
        while True:
            page = self._documents.ListDocuments(
                document_pb2.ListDocumentsRequest(status=status, page_size=page_size, page_token=token),
                metadata=self._metadata(),
                timeout=self.timeout_s,
            )
            yield from page.documents
            token = page.next_page_token
            if not token:
                return

    def delete(self, document_id: str) -> bool:
        response = self._documents.DeleteDocument(
            document_pb2.DeleteDocumentRequest(document_id=document_id),
            metadata=self._metadata(),
            timeout=self.timeout_s,
        )
        return bool(response.deleted)

    # -- search and generation -----------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        mode: str = "hybrid",
        rerank: bool | None = None,
        document_ids: Sequence[str] = (),
    ) -> search_pb2.SearchResponse:
        """``rerank`` None: the server's default (rerank when a reranker serves)."""
        request = search_pb2.SearchRequest(
            query=query,
            top_k=top_k,
            mode=MODES[mode],
            filters=common_pb2.SearchFilters(document_ids=list(document_ids)),
        )
        if rerank is not None:
            request.rerank = rerank
        return self._search.Search(
            request,
            metadata=self._metadata(),
            timeout=self.timeout_s,
        )

    def grade(
        self, query: str, document_id: str, grade: int, *, chunk_id: int = 0
    ) -> feedback_pb2.GradeResultResponse:
        """Grade a result of ``query``: 0 not relevant, 1 relevant, 2 highly relevant, 3 perfect."""
        return self._feedback.GradeResult(
            feedback_pb2.GradeResultRequest(
                query=query, document_id=document_id, chunk_id=chunk_id, grade=grade
            ),
            metadata=self._metadata(),
            timeout=self.timeout_s,
        )

    def ask(
        self,
        question: str,
        *,
        top_k: int = 5,
        max_tokens: int = 256,
        strict: bool = False,
        quotes_only: bool = False,
        timeout_s: float = 300.0,
    ) -> Iterator[generation_pb2.GenerateStreamResponse]:
        """Stream: token events, then the citations, the grounding and the summary (see
        ``GenerationService.GenerateStream`` in generation.proto; :func:`grounding_lines` prints
        a grounding)."""
        yield from self._generation.GenerateStream(
            generation_pb2.GenerateStreamRequest(
                question=question, top_k=top_k, max_tokens=max_tokens, strict=strict, quotes_only=quotes_only
            ),
            metadata=self._metadata(),
            timeout=timeout_s,
        )

    # -- operations ---------------------------------------------------------------------------
    def models(self) -> model_pb2.ListModelsResponse:
        return self._models.ListModels(
            model_pb2.ListModelsRequest(), metadata=self._metadata(), timeout=self.timeout_s
        )

    def stats(self) -> admin_pb2.GetStatsResponse:
        return self._admin.GetStats(
            admin_pb2.GetStatsRequest(), metadata=self._metadata(), timeout=self.timeout_s
        )

    def cleanup(self, days_old: int) -> admin_pb2.SystemCleanupResponse:
        return self._admin.SystemCleanup(
            admin_pb2.SystemCleanupRequest(days_old=days_old), metadata=self._metadata(), timeout=120
        )


def grounding_lines(grounding: generation_pb2.Grounding) -> list[str]:
    """A grounding for people: each answer sentence with its support and the source sentence
    it was checked against."""
    how = "quoted from the sources (no generated sentence was supported)" if grounding.extractive else ""
    lines = [
        f"Grounding: {grounding.grounded_fraction:.0%} of the sentences supported "
        f"(support >= {grounding.threshold:.2f}, scored by {grounding.verifier_model_version})"
        + (f"; {how}" if how else "")
        + (
            f"; {grounding.dropped_sentences} unsupported sentence(s) dropped"
            if grounding.dropped_sentences and not grounding.extractive
            else ""
        )
    ]
    for sentence in grounding.sentences:
        mark = "SUPPORTED  " if sentence.supported else "UNSUPPORTED"
        lines.append(f"  {mark} {sentence.support:.2f}  {sentence.text}")
        if sentence.HasField("evidence"):
            e = sentence.evidence
            verb = "by" if sentence.supported else "best evidence, not enough:"
            lines.append(f'      {verb} {e.document_title} (chunk {e.chunk_id}): "{e.quote}"')
    return lines
