"""Database errors are translated once, in rag.adapters.postgres, against the real PostgreSQL:
a database that is down is Unavailable (UNAVAILABLE over gRPC), a statement timeout is
DeadlineExceeded, a NUL reaching SQL is InvalidInput. A terminated backend costs no call an
error: the pool checks connections on checkout (tests/integration/test_dependency_recovery.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from grpc_services.servicers.admin import AdminServicer
from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.users import UserRepository
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.core.errors import DeadlineExceeded, InvalidInput, Unavailable
from rag.proto.rag.v1 import admin_pb2, admin_pb2_grpc
from rag.settings import Settings
from rag.stack.process import free_port
from tests.fixtures.grpc_server import EventLoopThread, running_server
from tests.fixtures.proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def one_connection(settings: Settings) -> Iterator[ConnectionPool]:
    """A pool of exactly one connection, so the test knows which backend the next call uses."""
    single = settings.model_copy(
        update={
            "DATABASE_POOL_SIZE": 1,
            "DATABASE_POOL_MAX_OVERFLOW": 0,
            "DATABASE_STATEMENT_TIMEOUT_MS": 500,
        }
    )
    with create_pool(single, min_size=1, name="test-db-errors") as pool:
        yield pool


def _terminate_backend(pool: ConnectionPool, db: psycopg.Connection) -> None:
    with pool.connection() as conn:
        pid = conn.info.backend_pid
    # The timeout makes PostgreSQL wait until the backend has gone (PostgreSQL 14+).
    assert db.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_a_terminated_backend_costs_no_call_an_error(
    one_connection: ConnectionPool, db: psycopg.Connection
) -> None:
    documents = DocumentRepository(one_connection)
    _terminate_backend(one_connection, db)
    assert set(documents.counts_by_status(tenant="nobody").values()) == {0}  # a new connection


def test_a_database_that_is_down_answers_unavailable_over_grpc(
    grpc_loop: EventLoopThread, settings: Settings
) -> None:
    async def no_cleanup(days: int) -> dict[str, int]:
        return {}

    token = JwtTokens.from_settings(settings).issue_access(Principal.of("ops", "ops", Role.ADMIN))
    auth = (("authorization", f"Bearer {token.token}"),)
    url = urlsplit(settings.DATABASE_URL)
    assert url.hostname is not None and url.port is not None
    with TcpProxy(url.hostname, url.port) as proxy:
        user, _, _ = url.netloc.rpartition("@")
        through = settings.model_copy(
            update={
                "DATABASE_URL": urlunsplit(url._replace(netloc=f"{user}@{proxy.address}")),
                "DATABASE_POOL_TIMEOUT": 2.0,
            }
        )
        with (
            create_pool(through, min_size=1, name="test-db-errors-down") as pool,
            running_server(grpc_loop, settings, [AdminServicer(pool=pool, cleanup=no_cleanup)]) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            proxy.stop()  # PostgreSQL killed: connections reset, new ones refused
            with pytest.raises(grpc.RpcError) as excinfo:
                stub.GetStats(admin_pb2.GetStatsRequest(), metadata=auth, timeout=30)
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry later" in (excinfo.value.details() or "")
            proxy.start()  # back: once the pool has reconnected (within seconds), calls succeed
            with pool.connection(timeout=30):
                pass
            assert stub.GetStats(admin_pb2.GetStatsRequest(), metadata=auth, timeout=30).documents_total >= 0


def test_a_statement_timeout_is_deadline_exceeded(
    one_connection: ConnectionPool, db: psycopg.Connection
) -> None:
    tenant = f"dl{uuid.uuid4().hex[:8]}"
    row = db.execute(
        "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes, status)"
        " VALUES (%s, 'file:///locked.txt', %s, 1, 'received') RETURNING id",
        (tenant, uuid.uuid4().hex * 2),
    ).fetchone()
    assert row is not None
    db.commit()
    try:
        with db.transaction():
            db.execute("SELECT 1 FROM documents WHERE id = %s FOR UPDATE", (row[0],))
            # The delete waits for the row lock until the pool's 500 ms statement timeout.
            with pytest.raises(DeadlineExceeded, match="statement timeout"):
                DocumentRepository(one_connection).delete([row[0]], tenant=tenant)
    finally:
        db.execute("DELETE FROM documents WHERE tenant = %s", (tenant,))
        db.commit()


def test_a_nul_reaching_sql_is_invalid_input(one_connection: ConnectionPool) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        DocumentRepository(one_connection).counts_by_status(tenant="a\x00b")


def test_the_user_repository_translates_too(settings: Settings) -> None:
    async def lookup(pool: ConnectionPool) -> None:
        await UserRepository(pool).get("a\x00b")

    with (
        create_pool(settings, min_size=1, name="test-db-errors-users") as pool,
        pytest.raises(InvalidInput, match="NUL"),
    ):
        asyncio.run(lookup(pool))


def test_a_pool_that_must_connect_at_start_is_unavailable_without_a_server(settings: Settings) -> None:
    url = urlsplit(settings.DATABASE_URL)
    user, _, _ = url.netloc.rpartition("@")
    nowhere = settings.model_copy(  # a port nothing listens on
        update={
            "DATABASE_URL": urlunsplit(url._replace(netloc=f"{user}@127.0.0.1:{free_port()}")),
            "DATABASE_POOL_TIMEOUT": 1.0,
        }
    )
    with pytest.raises(Unavailable, match=r"PostgreSQL did not answer within 1 s \(DATABASE_URL\)"):
        create_pool(nowhere, min_size=1, name="test-db-errors-start", wait=True)
