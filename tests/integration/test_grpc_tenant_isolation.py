"""Tenant isolation, adversarially: a user of tenant B calls every RPC with what belongs to tenant
A (its document ids, metadata filters, page tokens, the query A has just searched so that A's
result is cached, A's username) and gets nothing of A's: NOT_FOUND, PERMISSION_DENIED,
UNAUTHENTICATED or an empty answer, never A's ids, titles, text or counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import argon2
import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from psycopg_pool import ConnectionPool

from grpc_services.app import application
from grpc_services.permissions import RPC_PERMISSIONS
from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.documents import DocumentRepository
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.proto.rag.v1 import (
    admin_pb2,
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
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
QUESTION = "Who trimmed the lamp of the Skerryvore lighthouse?"
A_TEXTS = {
    "keeper.txt": "The Skerryvore keeper\n\nThe keeper of the Skerryvore lighthouse trimmed its lamp at dusk "
    "every night, and logged the ships that passed the reef.",
    "reef.txt": "The Skerryvore reef\n\nSkerryvore is a reef west of Tiree; before the lighthouse, ships broke "
    "on it in every winter storm.",
}
B_TEXT = "Growing tomatoes\n\nTomatoes need full sun, deep watering twice a week and a stake to climb."


@dataclass
class Tenant:
    name: str
    auth: tuple[tuple[str, str], ...]  # a user's access token
    admin: tuple[tuple[str, str], ...]  # an admin's of the same tenant
    refresh_token: str
    username: str
    documents: dict[str, str]  # id -> title


@dataclass
class World:
    channel: grpc.Channel
    a: Tenant
    b: Tenant
    a_page_token: str
    a_blob_keys: list[str]
    a_data: bytes

    @property
    def secrets(self) -> list[str]:
        """What must never reach tenant B: A's ids, titles, words and name."""
        return [*self.a.documents, *self.a.documents.values(), "Skerryvore", self.a.name]

    def assert_nothing_of_a(self, *messages: Message | str) -> None:
        for message in messages:
            text = message if isinstance(message, str) else text_format.MessageToString(message)
            leaked = [secret for secret in self.secrets if secret in text]
            assert not leaked, f"tenant B saw {leaked} in {text!r}"


def _login(channel: grpc.Channel, username: str) -> auth_pb2.LoginResponse:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    return stub.Login(auth_pb2.LoginRequest(username=username, password=PASSWORD), timeout=30)


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def world(
    grpc_loop: EventLoopThread,
    settings: Settings,
    intake: Intake,
    pipeline: Pipeline,
    pool: ConnectionPool,
) -> Iterator[World]:
    names = {"a": f"ia{uuid.uuid4().hex[:8]}", "b": f"ib{uuid.uuid4().hex[:8]}"}
    docs: dict[str, dict[str, str]] = {"a": {}, "b": {}}
    texts = {"a": A_TEXTS, "b": {"tomatoes.txt": B_TEXT}}
    for key, tenant in names.items():
        for filename, text in texts[key].items():
            received = intake.receive(
                text.encode(),
                tenant=tenant,
                filename=filename,
                title=text.split("\n", 1)[0],
                metadata={"team": f"team-{tenant}", "shared": "yes"},
            )
            assert pipeline.process(received.document.id).status.value == "indexed"
            docs[key][str(received.document.id)] = received.document.title
    documents = DocumentRepository(pool)
    documents.refresh_lexical_statistics(tenants=list(names.values()))
    users = {
        (key, role): f"iso-{key}-{role}-{uuid.uuid4().hex[:6]}" for key in names for role in ("user", "admin")
    }
    with pool.connection() as conn:
        for (key, role), username in users.items():
            conn.execute(
                "INSERT INTO users (username, password_hash, role, tenant) VALUES (%s, %s, %s, %s)",
                (username, CHEAP.hash(PASSWORD), role, names[key]),
            )
    blob_keys = [documents.get(uuid.UUID(i)).blob_key or "" for i in docs["a"]]

    quiet = settings.model_copy(update={"AIRFLOW_API_URL": ""})  # uploads stay `received`
    manager = application(quiet)
    app = grpc_loop.run(manager.__aenter__())
    try:
        with (
            running_server(grpc_loop, quiet, app.servicers, readiness=app.readiness) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            tenants = {}
            for key, tenant in names.items():
                user = _login(channel, users[key, "user"])
                admin = _login(channel, users[key, "admin"])
                tenants[key] = Tenant(
                    tenant,
                    _bearer(user.access_token),
                    _bearer(admin.access_token),
                    user.refresh_token,
                    users[key, "user"],
                    docs[key],
                )
            page = document_pb2_grpc.DocumentServiceStub(channel).ListDocuments(
                document_pb2.ListDocumentsRequest(page_size=1), metadata=tenants["a"].auth, timeout=10
            )
            assert page.next_page_token
            yield World(
                channel,
                tenants["a"],
                tenants["b"],
                page.next_page_token,
                blob_keys,
                A_TEXTS["keeper.txt"].encode(),
            )
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))
        for tenant in names.values():
            intake.delete(documents.source_uris(tenant=tenant, prefix="").values(), tenant=tenant)
        with pool.connection() as conn:
            conn.execute("DELETE FROM users WHERE username = ANY(%s)", (list(users.values()),))
            conn.execute("DELETE FROM label_queries WHERE tenant = ANY(%s)", (list(names.values()),))
        documents.refresh_lexical_statistics(tenants=list(names.values()))


def _error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, grpc.Call)  # a sync call's RpcError is also the grpc.Call
    return caught.value


def _filters(world: World) -> list[common_pb2.SearchFilters]:
    """A's document ids, A's metadata, and both with B's own metadata (which A's documents share)."""
    a_ids = list(world.a.documents)
    return [
        common_pb2.SearchFilters(),
        common_pb2.SearchFilters(document_ids=a_ids),
        common_pb2.SearchFilters(metadata={"team": f"team-{world.a.name}"}),
        common_pb2.SearchFilters(metadata={"shared": "yes"}),
        common_pb2.SearchFilters(document_ids=[*a_ids, *world.b.documents]),
    ]


# -- one check per RPC ----------------------------------------------------------------------------
def _like_an_unknown_id(world: World, call: Callable[..., Any], request: Callable[[str], Message]) -> None:
    """B's user and admin naming each of A's document ids: NOT_FOUND, worded like an unknown id."""
    unknown = str(uuid.uuid4())
    for doc_id in world.a.documents:
        for auth in (world.b.auth, world.b.admin):
            error = _error(call, request(doc_id), metadata=auth)
            other = _error(call, request(unknown), metadata=auth)
            assert error.code() == other.code() == grpc.StatusCode.NOT_FOUND
            assert error.details().replace(doc_id, "ID") == other.details().replace(unknown, "ID")


def _get_document(world: World) -> None:
    stub = document_pb2_grpc.DocumentServiceStub(world.channel)
    _like_an_unknown_id(world, stub.GetDocument, lambda i: document_pb2.GetDocumentRequest(document_id=i))


def _list_documents(world: World) -> None:
    stub = document_pb2_grpc.DocumentServiceStub(world.channel)
    for token in ("", world.a_page_token):
        for status in (common_pb2.DOCUMENT_STATUS_UNSPECIFIED, common_pb2.DOCUMENT_STATUS_INDEXED):
            for auth in (world.b.auth, world.b.admin):
                listed = stub.ListDocuments(
                    document_pb2.ListDocumentsRequest(page_token=token, status=status), metadata=auth
                )
                assert {d.id for d in listed.documents} <= set(world.b.documents)
                world.assert_nothing_of_a(listed)


def _delete_document(world: World) -> None:
    stub = document_pb2_grpc.DocumentServiceStub(world.channel)
    for doc_id in world.a.documents:
        deleted = stub.DeleteDocument(
            document_pb2.DeleteDocumentRequest(document_id=doc_id), metadata=world.b.admin
        )
        assert not deleted.deleted  # as for an id that does not exist
        still = stub.GetDocument(document_pb2.GetDocumentRequest(document_id=doc_id), metadata=world.a.auth)
        assert still.document.id == doc_id


def _upload(world: World) -> None:
    """B uploads A's exact bytes: its own new document (A's existence is not revealed by a
    deduplication), and deleting it leaves A's document and stored bytes alone."""
    stub = document_pb2_grpc.DocumentServiceStub(world.channel)

    def messages() -> Iterator[document_pb2.UploadRequest]:
        yield document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(filename="keeper.txt"))
        yield document_pb2.UploadRequest(chunk=world.a_data)

    uploaded = stub.Upload(messages(), metadata=world.b.auth, timeout=30)
    assert not uploaded.deduplicated and uploaded.document.id not in world.a.documents
    world.assert_nothing_of_a(uploaded)
    deleted = stub.DeleteDocument(
        document_pb2.DeleteDocumentRequest(document_id=uploaded.document.id), metadata=world.b.admin
    )
    assert deleted.deleted
    for doc_id in world.a.documents:
        stub.GetDocument(document_pb2.GetDocumentRequest(document_id=doc_id), metadata=world.a.auth)


def _search(world: World) -> None:
    stub = search_pb2_grpc.SearchServiceStub(world.channel)
    request = search_pb2.SearchRequest(query=QUESTION, top_k=5)
    stub.Search(request, metadata=world.a.auth, timeout=60)
    cached = stub.Search(request, metadata=world.a.auth, timeout=60)
    assert cached.cache_hit and cached.results[0].document_id in world.a.documents  # A's answer is cached
    for filters in _filters(world):
        for mode in (
            search_pb2.SEARCH_MODE_HYBRID,
            search_pb2.SEARCH_MODE_DENSE,
            search_pb2.SEARCH_MODE_FULLTEXT,
        ):
            answer = stub.Search(
                search_pb2.SearchRequest(query=QUESTION, top_k=5, filters=filters, mode=mode),
                metadata=world.b.auth,
                timeout=60,
            )
            assert {r.document_id for r in answer.results} <= set(world.b.documents)
            world.assert_nothing_of_a(answer)
    again = stub.Search(request, metadata=world.b.auth, timeout=60)
    assert {r.document_id for r in again.results} <= set(world.b.documents)
    world.assert_nothing_of_a(again)


def _grade_result(world: World) -> None:
    """B grading A's documents, or its own with A's chunk: NOT_FOUND; its own grade tells nothing."""
    stub = feedback_pb2_grpc.FeedbackServiceStub(world.channel)
    _like_an_unknown_id(
        world,
        stub.GradeResult,
        lambda i: feedback_pb2.GradeResultRequest(query=QUESTION, document_id=i, grade=3),
    )
    search = search_pb2_grpc.SearchServiceStub(world.channel)
    a_chunk = (
        search.Search(search_pb2.SearchRequest(query=QUESTION), metadata=world.a.auth).results[0].chunk_id
    )
    b_doc = next(iter(world.b.documents))
    request = feedback_pb2.GradeResultRequest(query=QUESTION, document_id=b_doc, chunk_id=a_chunk, grade=1)
    error = _error(stub.GradeResult, request, metadata=world.b.auth)
    request.chunk_id = 0
    graded = stub.GradeResult(request, metadata=world.b.auth)
    assert error.code() == grpc.StatusCode.NOT_FOUND and graded.document_id == b_doc
    world.assert_nothing_of_a(error.details(), graded)


def _generate(world: World) -> None:
    stub = generation_pb2_grpc.GenerationServiceStub(world.channel)
    for filters in _filters(world)[1:3]:  # only A's documents match: nothing for B
        answer = stub.Generate(
            generation_pb2.GenerateRequest(question=QUESTION, filters=filters, max_tokens=16),
            metadata=world.b.auth,
            timeout=120,
        )
        assert not answer.citations and answer.summary.usage.context_chunks == 0
        world.assert_nothing_of_a(answer)


def _generate_stream(world: World) -> None:
    stub = generation_pb2_grpc.GenerationServiceStub(world.channel)
    for filters in _filters(world)[1:3]:
        events = list(
            stub.GenerateStream(
                generation_pb2.GenerateStreamRequest(question=QUESTION, filters=filters, max_tokens=16),
                metadata=world.b.auth,
                timeout=120,
            )
        )
        assert events and all(not e.citations.citations for e in events)
        world.assert_nothing_of_a(*events)


def _login_as_a(world: World) -> None:
    """B's password with A's username: refused like any wrong password, nothing of A's."""
    stub = auth_pb2_grpc.AuthServiceStub(world.channel)
    error = _error(
        lambda: stub.Login(auth_pb2.LoginRequest(username=world.a.username, password="b's password"))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    world.assert_nothing_of_a(error.details())


def _refresh(world: World) -> None:
    """B's refresh token yields a token of B's tenant."""
    reply = auth_pb2_grpc.AuthServiceStub(world.channel).Refresh(
        auth_pb2.RefreshRequest(refresh_token=world.b.refresh_token), timeout=30
    )
    world.assert_nothing_of_a(reply)
    listed = document_pb2_grpc.DocumentServiceStub(world.channel).ListDocuments(
        document_pb2.ListDocumentsRequest(), metadata=_bearer(reply.access_token)
    )
    assert {d.id for d in listed.documents} == set(world.b.documents)


def _operator_only(method: str, request: Message) -> Callable[[World], None]:
    """System-wide RPCs (counts over every tenant, models) are for operators: a tenant's user is
    refused before anything is read."""

    def check(world: World) -> None:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = world.channel.unary_unary(method)
        error = _error(call, request.SerializeToString(), metadata=world.b.auth)  # bytes in and out
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        world.assert_nothing_of_a(error.details())

    return check


OPERATOR_ONLY: dict[str, Message] = {
    "/rag.v1.ModelService/ListModels": model_pb2.ListModelsRequest(),
    "/rag.v1.ModelService/WarmModels": model_pb2.WarmModelsRequest(),
    "/rag.v1.ModelService/CleanupCache": model_pb2.CleanupCacheRequest(),
    "/rag.v1.ModelService/UpdateAllModels": model_pb2.UpdateAllModelsRequest(),
    "/rag.v1.AdminService/GetStats": admin_pb2.GetStatsRequest(),
    "/rag.v1.AdminService/SystemCleanup": admin_pb2.SystemCleanupRequest(days_old=3650),
}
CHECKS: dict[str, Callable[[World], None]] = {
    "/rag.v1.AuthService/Login": _login_as_a,
    "/rag.v1.AuthService/Refresh": _refresh,
    "/rag.v1.DocumentService/Upload": _upload,
    "/rag.v1.DocumentService/GetDocument": _get_document,
    "/rag.v1.DocumentService/ListDocuments": _list_documents,
    "/rag.v1.DocumentService/DeleteDocument": _delete_document,
    "/rag.v1.SearchService/Search": _search,
    "/rag.v1.FeedbackService/GradeResult": _grade_result,
    "/rag.v1.GenerationService/Generate": _generate,
    "/rag.v1.GenerationService/GenerateStream": _generate_stream,
    **{method: _operator_only(method, request) for method, request in OPERATOR_ONLY.items()},
}
RAG_RPCS = sorted(m for m in RPC_PERMISSIONS if m.startswith("/rag.v1."))


def test_every_rpc_has_an_isolation_check() -> None:
    assert sorted(CHECKS) == RAG_RPCS


@pytest.mark.parametrize("method", RAG_RPCS)
def test_tenant_b_gets_nothing_of_tenant_a(world: World, method: str) -> None:
    CHECKS[method](world)


def test_tenant_a_still_has_everything(world: World, settings: Settings) -> None:
    """After B's attempts: A's documents, and their stored bytes, are all there."""
    stub = document_pb2_grpc.DocumentServiceStub(world.channel)
    listed = stub.ListDocuments(document_pb2.ListDocumentsRequest(), metadata=world.a.auth)
    assert {d.id for d in listed.documents} == set(world.a.documents)
    blobs = BlobStore(settings)
    assert all(blobs.exists(settings.S3_BUCKET_DOCUMENTS, key) for key in world.a_blob_keys)
