"""The whole gRPC API on a real server (port 0) over the real stack: every RPC's happy path,
its error paths, and tenant isolation on every RPC that takes an id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_services.app import Application, application
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    document_pb2,
    document_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration


@dataclass
class Api:
    channel: grpc.Channel
    tokens: JwtTokens
    tenant: str

    def auth(self, role: Role = Role.USER, tenant: str | None = None) -> tuple[tuple[str, str], ...]:
        principal = Principal.of(f"test-{role.value}", tenant or self.tenant, role)
        return (("authorization", f"Bearer {self.tokens.issue_access(principal).token}"),)

    @property
    def documents(self) -> document_pb2_grpc.DocumentServiceStub:
        return document_pb2_grpc.DocumentServiceStub(self.channel)

    @property
    def search(self) -> search_pb2_grpc.SearchServiceStub:
        return search_pb2_grpc.SearchServiceStub(self.channel)

    @property
    def generation(self) -> generation_pb2_grpc.GenerationServiceStub:
        return generation_pb2_grpc.GenerationServiceStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.channel)

    def upload(
        self, data: bytes, role: Role = Role.USER, tenant: str | None = None, **meta: Any
    ) -> document_pb2.UploadResponse:
        def messages() -> Iterator[document_pb2.UploadRequest]:
            yield document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(**meta))
            for i in range(0, len(data), 1000):
                yield document_pb2.UploadRequest(chunk=data[i : i + 1000])

        return self.documents.Upload(messages(), metadata=self.auth(role, tenant), timeout=30)


@contextmanager
def _serve(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[tuple[Application, int]]:
    manager = application(settings)
    app = grpc_loop.run(manager.__aenter__())
    try:
        with running_server(grpc_loop, settings, app.servicers, readiness=app.readiness) as server:
            yield app, server.port
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def api(
    grpc_loop: EventLoopThread, settings: Settings, topics_tenant: tuple[str, dict[str, str]]
) -> Iterator[Api]:
    limited = settings.model_copy(update={"UPLOAD_MAX_BYTES": 64 * 1024})
    with _serve(grpc_loop, limited) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Api(channel, JwtTokens.from_settings(settings), topics_tenant[0])


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    return excinfo.value.code(), excinfo.value.details() or ""


def test_search_finds_the_right_document(api: Api, topics_tenant: tuple[str, dict[str, str]]) -> None:
    response = api.search.Search(
        search_pb2.SearchRequest(query="Which vitamin does sunlight produce?", top_k=3),
        metadata=api.auth(),
        timeout=30,
    )
    assert response.results[0].document_id == topics_tenant[1]["vitamin-d.txt"]
    assert response.results[0].document_title == "Vitamin D and bone health"
    assert response.embedding_model_version and response.took_ms > 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (search_pb2.SearchRequest(query="   "), "query"),
        (search_pb2.SearchRequest(query="x" * 1001), "query"),
        (search_pb2.SearchRequest(query="ok", top_k=101), "top_k"),
        (
            search_pb2.SearchRequest(query="ok", filters=common_pb2.SearchFilters(document_ids=["nope"])),
            "filters.document_ids",
        ),
    ],
)
def test_invalid_search_names_the_field(api: Api, request_: search_pb2.SearchRequest, field: str) -> None:
    code, details = _code(lambda: api.search.Search(request_, metadata=api.auth(), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:")


def test_permissions_and_missing_token(api: Api) -> None:
    code, _ = _code(lambda: api.search.Search(search_pb2.SearchRequest(query="x"), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = _code(lambda: api.upload(b"hello there", role=Role.READONLY, filename="a.txt"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = _code(lambda: api.admin.GetStats(admin_pb2.GetStatsRequest(), metadata=api.auth(), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    stats = api.admin.GetStats(admin_pb2.GetStatsRequest(), metadata=api.auth(Role.ADMIN), timeout=10)
    assert stats.documents_total >= 8 and stats.chunks_total >= 8 and stats.embedding_model_version


def test_upload_dedup_get_list_delete_and_tenant_isolation(api: Api, db: psycopg.Connection) -> None:
    tenant = f"up{uuid.uuid4().hex[:8]}"
    body = f"Magnesium and cramps {uuid.uuid4()}\n\nMagnesium may ease night-time leg cramps.".encode()
    first = api.upload(body, tenant=tenant, filename="mg.txt", metadata={"team": "nutrition"})
    second = api.upload(body, tenant=tenant, filename="again.txt")
    doc = first.document
    assert not first.deduplicated and second.deduplicated and second.document.id == doc.id
    assert doc.status == common_pb2.DOCUMENT_STATUS_RECEIVED and doc.mime_type == "text/plain"
    assert doc.metadata["team"] == "nutrition"
    assert first.ingestion_run_id  # the stack's Airflow took the run

    get = api.documents.GetDocument(
        document_pb2.GetDocumentRequest(document_id=doc.id), metadata=api.auth(tenant=tenant), timeout=10
    )
    assert get.document.content_hash == doc.content_hash
    code, _ = _code(
        lambda: api.documents.GetDocument(
            document_pb2.GetDocumentRequest(document_id=doc.id),
            metadata=api.auth(tenant=tenant + "x"),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = _code(
        lambda: api.documents.GetDocument(
            document_pb2.GetDocumentRequest(document_id="not-a-uuid"),
            metadata=api.auth(tenant=tenant),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("document_id:")

    # The ingestion DAG, triggered through Airflow's REST API, indexes the upload.
    deadline = time.monotonic() + 180
    status = doc.status
    while time.monotonic() < deadline and status != common_pb2.DOCUMENT_STATUS_INDEXED:
        time.sleep(2)
        status = api.documents.GetDocument(
            document_pb2.GetDocumentRequest(document_id=doc.id), metadata=api.auth(tenant=tenant), timeout=10
        ).document.status
    assert status == common_pb2.DOCUMENT_STATUS_INDEXED

    listed = api.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(page_size=1), metadata=api.auth(tenant=tenant), timeout=10
    )
    assert [d.id for d in listed.documents] == [doc.id] and listed.next_page_token == ""
    assert not api.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(), metadata=api.auth(tenant=tenant + "x"), timeout=10
    ).documents

    other = api.documents.DeleteDocument(
        document_pb2.DeleteDocumentRequest(document_id=doc.id),
        metadata=api.auth(Role.ADMIN, tenant + "x"),
        timeout=10,
    )
    assert not other.deleted
    deleted = api.documents.DeleteDocument(
        document_pb2.DeleteDocumentRequest(document_id=doc.id),
        metadata=api.auth(Role.ADMIN, tenant),
        timeout=10,
    )
    assert deleted.deleted
    again = api.documents.DeleteDocument(
        document_pb2.DeleteDocumentRequest(document_id=doc.id),
        metadata=api.auth(Role.ADMIN, tenant),
        timeout=10,
    )
    assert not again.deleted
    assert db.execute("SELECT count(*) FROM chunks WHERE document_id = %s", (doc.id,)).fetchone() == (0,)
    result = api.search.Search(
        search_pb2.SearchRequest(query="magnesium cramps"), metadata=api.auth(tenant=tenant), timeout=30
    )
    assert doc.id not in {r.document_id for r in result.results}


def test_bad_uploads_are_rejected_with_a_reason(api: Api) -> None:
    code, details = _code(lambda: api.upload(b"x" * (65 * 1024), filename="big.txt"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UPLOAD_MAX_BYTES" in details
    code, details = _code(lambda: api.upload(bytes(range(256)) * 8, filename="fake.pdf"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "binary content" in details
    code, details = _code(
        lambda: api.documents.Upload(
            iter([document_pb2.UploadRequest(chunk=b"abc")]), metadata=api.auth(), timeout=10
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("metadata:")


def test_generate_stream_sends_tokens_then_citations_then_summary(api: Api) -> None:
    request = generation_pb2.GenerateStreamRequest(
        question="Which vitamin does sunlight produce in the skin?", top_k=3, max_tokens=30
    )
    events = list(api.generation.GenerateStream(request, metadata=api.auth(), timeout=180))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-3:] == ["citations", "grounding", "summary"] and kinds.count("token") >= 1
    assert set(kinds[:-3]) == {"token"}
    grounding = events[-2].grounding
    assert grounding.sentences and grounding.verifier_model_version
    supported = [s for s in grounding.sentences if s.supported]
    assert grounding.grounded_fraction == pytest.approx(len(supported) / len(grounding.sentences))
    for sentence in grounding.sentences:
        assert grounding.answer[sentence.char_start : sentence.char_end] == sentence.text
        assert sentence.supported == (sentence.support >= grounding.threshold - 1e-6)
    # Every citation is the evidence of a supported sentence.
    quotes = {(s.evidence.chunk_id, s.evidence.char_start) for s in supported}
    assert {(c.chunk_id, c.char_start) for c in events[-3].citations.citations} == quotes
    summary = events[-1].summary
    assert summary.usage.context_chunks >= 1 and summary.finish_reason in (
        generation_pb2.FINISH_REASON_STOP,
        generation_pb2.FINISH_REASON_LENGTH,
    )
    unary = api.generation.Generate(
        generation_pb2.GenerateRequest(
            question="Who won the 1998 football world cup final in Paris?", max_tokens=20
        ),
        metadata=api.auth(),
        timeout=180,
    )
    assert unary.summary.finish_reason == generation_pb2.FINISH_REASON_NO_CONTEXT and not unary.citations
    assert unary.grounding.grounded_fraction == 0.0 and not unary.grounding.sentences


def test_strict_generate_answers_only_supported_sentences(api: Api) -> None:
    question = "Which vitamin does sunlight produce in the skin?"
    request = generation_pb2.GenerateStreamRequest(question=question, top_k=3, max_tokens=60, strict=True)
    events = list(api.generation.GenerateStream(request, metadata=api.auth(), timeout=180))
    grounding = next(e.grounding for e in events if e.WhichOneof("event") == "grounding")
    streamed = "".join(e.token for e in events if e.WhichOneof("event") == "token")
    assert grounding.sentences and all(s.supported for s in grounding.sentences)
    assert streamed.strip() == grounding.answer.strip()
    unary = api.generation.Generate(
        generation_pb2.GenerateRequest(question=question, top_k=3, quotes_only=True),
        metadata=api.auth(),
        timeout=60,
    )
    assert unary.grounding.extractive and unary.summary.usage.completion_tokens == 0
    for citation in unary.citations:
        assert f'"{citation.quote}"' in unary.answer


def test_triton_down_is_unavailable_and_redis_down_still_answers(
    grpc_loop: EventLoopThread, settings: Settings, topics_tenant: tuple[str, dict[str, str]]
) -> None:
    broken = settings.model_copy(
        update={
            "TRITON_GRPC_URL": "127.0.0.1:1",
            "TRITON_TIMEOUT_S": 3.0,
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    tokens = JwtTokens.from_settings(settings)
    auth = (
        (
            "authorization",
            f"Bearer {tokens.issue_access(Principal.of('t', topics_tenant[0], Role.USER)).token}",
        ),
    )
    with _serve(grpc_loop, broken) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        began = time.monotonic()
        code, details = _code(
            lambda: stub.Search(
                search_pb2.SearchRequest(query=f"never cached {uuid.uuid4()}"), metadata=auth, timeout=10
            )
        )
        assert code == grpc.StatusCode.UNAVAILABLE and "Triton" in details
        assert time.monotonic() - began < 8
        lexical = stub.Search(
            search_pb2.SearchRequest(query="inhaler wheezing", mode=search_pb2.SEARCH_MODE_FULLTEXT),
            metadata=auth,
            timeout=10,
        )
        assert lexical.results  # Redis is down too, and search still answers

        # Health per service: what needs no model stays SERVING, the overall status does not.
        health = health_pb2_grpc.HealthStub(channel)

        def status(service: str) -> Any:
            return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

        serving = health_pb2.HealthCheckResponse.SERVING
        deadline = time.monotonic() + 15
        while status("rag.v1.DocumentService") != serving and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status("rag.v1.DocumentService") == serving
        assert status("rag.v1.AuthService") == serving
        for service in ("", "rag.v1.SearchService", "rag.v1.GenerationService"):
            assert status(service) == health_pb2.HealthCheckResponse.NOT_SERVING, service


def test_system_cleanup_removes_only_what_is_old(api: Api, db: psycopg.Connection) -> None:
    tenant = f"cl{uuid.uuid4().hex[:8]}"
    old, recent = (uuid.uuid4().hex * 2 for _ in range(2))
    for content_hash, age in ((old, "40 days"), (recent, "1 day")):
        db.execute(
            "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes, status, error_reason, updated_at)"
            " VALUES (%s, %s, %s, 1, 'quarantined', 'bad', now() - %s::interval)",
            (tenant, f"file:///{content_hash}", content_hash, age),
        )
    db.execute(
        "INSERT INTO query_history (created_at, tenant, kind, query, latency_ms) VALUES (now() - interval '40 days', %s, 'search', 'q', 1)",
        (tenant,),
    )
    db.commit()
    code, details = _code(
        lambda: api.admin.SystemCleanup(
            admin_pb2.SystemCleanupRequest(days_old=-1), metadata=api.auth(Role.ADMIN), timeout=30
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("days_old:")
    response = api.admin.SystemCleanup(
        admin_pb2.SystemCleanupRequest(days_old=30), metadata=api.auth(Role.ADMIN), timeout=30
    )
    assert response.deleted["quarantined_documents"] >= 1 and response.deleted["query_history_rows"] >= 1
    left = db.execute("SELECT content_hash FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    assert left == [(recent,)]
    assert db.execute("SELECT count(*) FROM query_history WHERE tenant = %s", (tenant,)).fetchone() == (0,)


def test_model_service_lists_warms_and_updates(api: Api) -> None:
    from rag.proto.rag.v1 import model_pb2, model_pb2_grpc

    stub = model_pb2_grpc.ModelServiceStub(api.channel)
    code, _ = _code(lambda: stub.ListModels(model_pb2.ListModelsRequest(), metadata=api.auth(), timeout=30))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    listed = stub.ListModels(model_pb2.ListModelsRequest(), metadata=api.auth(Role.ADMIN), timeout=60)
    by_name = {m.name: m for m in listed.models}
    assert set(by_name) == {"embedder", "reranker", "generator"}
    assert by_name["embedder"].triton_state == model_pb2.TRITON_MODEL_STATE_READY
    assert by_name["generator"].triton_state == model_pb2.TRITON_MODEL_STATE_READY
    warmed = stub.WarmModels(
        model_pb2.WarmModelsRequest(model_names=["embedder"]), metadata=api.auth(Role.ADMIN), timeout=120
    )
    assert [(r.name, r.ready) for r in warmed.results] == [("embedder", True)]
    code, details = _code(
        lambda: stub.WarmModels(
            model_pb2.WarmModelsRequest(model_names=["nope"]), metadata=api.auth(Role.ADMIN), timeout=30
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("model_names:")
    updates = stub.UpdateAllModels(
        model_pb2.UpdateAllModelsRequest(dry_run=True), metadata=api.auth(Role.ADMIN), timeout=60
    )
    assert {u.name for u in updates.updates} == {"embedder", "reranker", "generator"}
    assert not any(u.changed for u in updates.updates)
    cleaned = stub.CleanupCache(
        model_pb2.CleanupCacheRequest(days_old=3650), metadata=api.auth(Role.ADMIN), timeout=60
    )
    assert cleaned.entries_removed == 0  # nothing is ten years old
