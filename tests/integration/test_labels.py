"""Relevance labels in PostgreSQL and over gRPC: the repository (latest grade wins, imports in one
transaction, tenants apart in SQL) and FeedbackService.GradeResult on a real server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from grpc_services.app import application
from rag.adapters.postgres.labels import LabelRepository
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.core.errors import InvalidInput, NotFound
from rag.core.labels import ImportCounts, LabelledQuery, LabelSource
from rag.ingestion.intake import Intake
from rag.proto.rag.v1 import feedback_pb2, feedback_pb2_grpc, search_pb2, search_pb2_grpc
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

QUESTION = "Which vitamin does sunlight produce?"


@dataclass
class Tenants:
    a: str
    b: str
    a_docs: list[uuid.UUID]
    b_docs: list[uuid.UUID]


@pytest.fixture(scope="module")
def labels(pool: ConnectionPool) -> LabelRepository:
    return LabelRepository(pool)


@pytest.fixture
def tenants(intake: Intake, labels: LabelRepository) -> Iterator[Tenants]:
    """Two fresh tenants with three received documents each (labels need no chunks)."""
    names = {"a": f"la{uuid.uuid4().hex[:8]}", "b": f"lb{uuid.uuid4().hex[:8]}"}
    docs: dict[str, list[uuid.UUID]] = {"a": [], "b": []}
    for key, tenant in names.items():
        for n in range(3):
            received = intake.receive(
                f"Document {n} of {tenant}\n\nSome words about topic {n}.".encode(),
                tenant=tenant,
                source_uri=f"beir://labels/{key}{n}.txt",
            )
            docs[key].append(received.document.id)
    try:
        yield Tenants(names["a"], names["b"], docs["a"], docs["b"])
    finally:
        for key, tenant in names.items():
            labels.delete(tenant)
            intake.delete(docs[key], tenant=tenant)


# -- the repository ---------------------------------------------------------------------------------
def test_the_latest_grade_wins_with_who_and_when(labels: LabelRepository, tenants: Tenants) -> None:
    doc = tenants.a_docs[0]
    first = labels.grade(tenants.a, "  what is topic zero?  ", doc, 1, labelled_by="alice")
    assert (first.query_text, first.document_id, first.grade) == ("what is topic zero?", str(doc), 1)
    assert (first.labelled_by, first.source, first.chunk_id) == ("alice", LabelSource.FEEDBACK, None)
    assert (
        first.query_key[0] == "#" and first.query_key[1:].isdigit()
    )  # no external id: # and the row's number
    assert abs(first.labelled_at - datetime.now(UTC)) < timedelta(minutes=1)
    time.sleep(0.01)
    second = labels.grade(tenants.a, "what is topic zero?", doc, 3, labelled_by="bob")
    assert (second.query_key, second.grade, second.labelled_by) == (first.query_key, 3, "bob")
    assert second.labelled_at > first.labelled_at
    assert labels.list(tenants.a) == [second]  # one label per (query, document)
    assert labels.labelled_queries(tenants.a) == [
        LabelledQuery(first.query_key, "what is topic zero?", {str(doc): 3})
    ]


def test_a_document_of_another_tenant_is_not_found_like_an_unknown_one(
    labels: LabelRepository, tenants: Tenants
) -> None:
    foreign, unknown = tenants.a_docs[0], uuid.uuid4()
    with pytest.raises(NotFound) as other:
        labels.grade(tenants.b, "topic zero", foreign, 2, labelled_by="mallory")
    with pytest.raises(NotFound) as missing:
        labels.grade(tenants.b, "topic zero", unknown, 2, labelled_by="mallory")
    assert str(other.value) == f"document {foreign} does not exist"
    assert str(other.value).replace(str(foreign), "ID") == str(missing.value).replace(str(unknown), "ID")
    with pytest.raises(NotFound, match=r"^chunk 987654321 is not a chunk of document "):
        labels.grade(tenants.b, "topic zero", tenants.b_docs[0], 2, chunk_id=987654321, labelled_by="m")
    assert labels.labelled_queries(tenants.b) == labels.labelled_queries(tenants.a) == []


def test_sql_refuses_a_label_of_another_tenants_document(
    labels: LabelRepository, tenants: Tenants, db: psycopg.Connection
) -> None:
    """The composite foreign keys hold even for a statement that forgets the tenant."""
    mine = labels.grade(tenants.b, "topic one", tenants.b_docs[1], 1, labelled_by="bob")
    insert = (
        "INSERT INTO relevance_labels (query_id, tenant, document_id, grade, labelled_by, source)"
        " VALUES (%s, %s, %s, 1, 'sql', 'feedback')"
    )
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="relevance_labels_document_fkey"):
        db.execute(insert, (int(mine.query_key.removeprefix("#")), tenants.b, tenants.a_docs[0]))
    db.rollback()
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="relevance_labels_query_fkey"):
        db.execute(
            insert, (int(mine.query_key.removeprefix("#")), tenants.a, tenants.a_docs[0])
        )  # B's query, A's tenant
    db.rollback()


def test_an_import_is_one_transaction(labels: LabelRepository, tenants: Tenants) -> None:
    d0, d1, d2 = tenants.a_docs
    queries = {"1": "what is topic zero?", "2": "topic two", "9": "a query with no labels"}
    counts = labels.import_labels(
        tenants.a, queries, [("1", d0, 2), ("1", d1, 0), ("2", d2, 1), ("1", d0, 3)], labelled_by="beir"
    )
    assert counts == ImportCounts(queries=2, labels=3)  # the pair given twice keeps its last grade
    stored = labels.labelled_queries(tenants.a)
    assert stored == [
        LabelledQuery("1", "what is topic zero?", {str(d0): 3, str(d1): 0}),
        LabelledQuery("2", "topic two", {str(d2): 1}),
    ]
    assert {(x.source, x.labelled_by) for x in labels.list(tenants.a)} == {(LabelSource.IMPORT, "beir")}

    # One label names another tenant's document: nothing of this import is stored.
    with pytest.raises(NotFound, match=r"^1 of the labelled documents are not documents of tenant"):
        labels.import_labels(
            tenants.a,
            {**queries, "3": "new"},
            [("3", d0, 1), ("1", d1, 2), ("2", tenants.b_docs[0], 1)],
            labelled_by="beir",
        )
    with pytest.raises(InvalidInput, match=r"^queries: the qrels name the query '4', which has no text"):
        labels.import_labels(tenants.a, queries, [("1", d1, 2), ("4", d0, 1)], labelled_by="beir")
    with pytest.raises(InvalidInput, match=r"^grade: "):
        labels.import_labels(tenants.a, queries, [("1", d1, 2), ("2", d0, 7)], labelled_by="beir")
    assert labels.labelled_queries(tenants.a) == stored
    assert labels.delete(tenants.a, "3") == 0  # not even the new query's row


def test_an_import_joins_the_query_a_caller_graded_first(labels: LabelRepository, tenants: Tenants) -> None:
    d0, d1, _ = tenants.a_docs
    graded = labels.grade(tenants.a, "does topic one matter", d0, 1, labelled_by="alice")
    labels.import_labels(
        tenants.a, {"PLAIN-7": "does topic one matter"}, [("PLAIN-7", d1, 2)], labelled_by="x"
    )
    assert labels.labelled_queries(tenants.a) == [
        LabelledQuery("PLAIN-7", "does topic one matter", {str(d0): 1, str(d1): 2})
    ]
    again = labels.grade(tenants.a, "does topic one matter", d0, 0, labelled_by="alice")
    assert (again.query_key, again.grade) == ("PLAIN-7", 0)
    assert graded.query_key != again.query_key
    assert labels.delete(tenants.a, "PLAIN-7") == 1
    assert labels.labelled_queries(tenants.a) == []


def test_deleting_a_document_deletes_its_labels(
    labels: LabelRepository, tenants: Tenants, intake: Intake
) -> None:
    d0, d1, _ = tenants.a_docs
    labels.import_labels(tenants.a, {"1": "topic"}, [("1", d0, 1), ("1", d1, 2)], labelled_by="x")
    intake.delete([d0], tenant=tenants.a)
    assert labels.labelled_queries(tenants.a) == [LabelledQuery("1", "topic", {str(d1): 2})]


# -- over gRPC ---------------------------------------------------------------------------------------
@dataclass
class FeedbackApi:
    channel: grpc.Channel
    tokens: JwtTokens

    def auth(
        self, tenant: str, role: Role = Role.USER, username: str = "grader"
    ) -> tuple[tuple[str, str], ...]:
        token = self.tokens.issue_access(Principal.of(username, tenant, role)).token
        return (("authorization", f"Bearer {token}"),)

    def grade(
        self, request: feedback_pb2.GradeResultRequest, auth: tuple[tuple[str, str], ...]
    ) -> feedback_pb2.GradeResultResponse:
        return feedback_pb2_grpc.FeedbackServiceStub(self.channel).GradeResult(
            request, metadata=auth, timeout=30
        )


@pytest.fixture(scope="module")
def feedback_api(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[FeedbackApi]:
    quiet = settings.model_copy(update={"AIRFLOW_API_URL": ""})
    manager = application(quiet)
    app = grpc_loop.run(manager.__aenter__())
    try:
        with (
            running_server(grpc_loop, quiet, app.servicers, readiness=app.readiness) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            yield FeedbackApi(channel, JwtTokens.from_settings(settings))
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))


def _refused(
    api: FeedbackApi, request: feedback_pb2.GradeResultRequest, auth: tuple[tuple[str, str], ...]
) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        api.grade(request, auth)
    assert isinstance(caught.value, grpc.Call)
    return caught.value


def test_a_user_grades_a_search_result(
    feedback_api: FeedbackApi,
    topics_tenant: tuple[str, dict[str, str]],
    labels: LabelRepository,
    db: psycopg.Connection,
) -> None:
    tenant = topics_tenant[0]
    auth = feedback_api.auth(tenant, username="alice")
    found = search_pb2_grpc.SearchServiceStub(feedback_api.channel).Search(
        search_pb2.SearchRequest(query=QUESTION, top_k=3), metadata=auth, timeout=60
    )
    best = found.results[0]
    try:
        answer = feedback_api.grade(
            feedback_pb2.GradeResultRequest(
                query=f" {QUESTION}\n", document_id=best.document_id, chunk_id=best.chunk_id, grade=3
            ),
            auth,
        )
        assert (
            answer.query_key.startswith("#")
            and answer.query_key[1:].isdigit()
            and (answer.document_id, answer.grade) == (best.document_id, 3)
        )
        assert abs(answer.labelled_at.ToDatetime(UTC) - datetime.now(UTC)) < timedelta(minutes=1)
        row = db.execute(
            "SELECT q.text, l.tenant, l.chunk_id, l.grade, l.labelled_by, l.source FROM relevance_labels l"
            " JOIN label_queries q ON q.id = l.query_id WHERE l.document_id = %s",
            (best.document_id,),
        ).fetchall()
        assert row == [(QUESTION, tenant, best.chunk_id, 3, "alice", "feedback")]
        # Readonly may search but not grade.
        denied = _refused(
            feedback_api,
            feedback_pb2.GradeResultRequest(query=QUESTION, document_id=best.document_id, grade=0),
            feedback_api.auth(tenant, Role.READONLY),
        )
        assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "labels:write" in (denied.details() or "")
        assert labels.labelled_queries(tenant)[0].grades == {best.document_id: 3}
    finally:
        labels.delete(tenant)


def test_another_tenants_document_is_not_found_over_grpc(
    feedback_api: FeedbackApi, tenants: Tenants, labels: LabelRepository
) -> None:
    foreign, unknown = str(tenants.a_docs[0]), str(uuid.uuid4())
    auth = feedback_api.auth(tenants.b)
    other = _refused(
        feedback_api, feedback_pb2.GradeResultRequest(query="q", document_id=foreign, grade=1), auth
    )
    missing = _refused(
        feedback_api, feedback_pb2.GradeResultRequest(query="q", document_id=unknown, grade=1), auth
    )
    assert other.code() is missing.code() is grpc.StatusCode.NOT_FOUND
    assert (other.details() or "").replace(foreign, "ID") == (missing.details() or "").replace(unknown, "ID")
    assert labels.labelled_queries(tenants.a) == labels.labelled_queries(tenants.b) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"grade": 7}, "grade"),
        ({"grade": -1}, "grade"),
        ({"query": "   "}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"document_id": "nope"}, "document_id"),
        ({"chunk_id": -1}, "chunk_id"),
    ],
)
def test_an_invalid_field_is_invalid_argument_naming_it(
    feedback_api: FeedbackApi, tenants: Tenants, fields: dict[str, object], field: str
) -> None:
    request = feedback_pb2.GradeResultRequest(
        **{"query": "q", "document_id": str(tenants.a_docs[0]), "grade": 1, **fields}  # type: ignore[arg-type]
    )
    error = _refused(feedback_api, request, feedback_api.auth(tenants.a))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(f"{field}: ")
