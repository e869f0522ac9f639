"""AuthService on a real server against the real PostgreSQL: Login, Refresh, and the tokens it
issues opening (or not) a protected RPC."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import grpc
import pytest

from grpc_services.context import current_principal
from grpc_services.server import RagServer
from grpc_services.servicers.auth import AuthServicer
from rag.adapters.passwords import Argon2Passwords
from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.users import UserRepository
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Role
from rag.core.authentication import Authenticator
from rag.proto.rag.v1 import auth_pb2, auth_pb2_grpc, common_pb2, search_pb2, search_pb2_grpc
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

# Cheap parameters keep the tests fast; production uses argon2-cffi's RFC 9106 defaults.
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


class SearchDouble(search_pb2_grpc.SearchServiceServicer):
    """Answers with the caller's identity, so a test can see whose token opened the call."""

    async def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        principal = current_principal()
        return search_pb2.SearchResponse(
            results=[common_pb2.SearchResult(document_title=f"{principal.tenant}/{principal.username}")]
        )


@dataclass
class AuthHarness:
    server: RagServer
    users: UserRepository
    loop: EventLoopThread
    auth: auth_pb2_grpc.AuthServiceStub
    search: search_pb2_grpc.SearchServiceStub

    def add_user(self, role: Role = Role.USER, tenant: str = "acme", disabled: bool = False) -> str:
        username = f"u-{uuid.uuid4().hex[:10]}"
        self.loop.run(self.users.add(username, CHEAP.hash(PASSWORD), role, tenant))
        if disabled:
            self.loop.run(self.users.set_disabled(username, True))
        return username


@pytest.fixture(scope="module")
def harness(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[AuthHarness]:
    pool = create_pool(settings, min_size=1, name="test-auth")
    users = UserRepository(pool)
    authenticator = Authenticator(users, Argon2Passwords(CHEAP), JwtTokens.from_settings(settings))
    try:
        with (
            running_server(grpc_loop, settings, [AuthServicer(authenticator), SearchDouble()]) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            yield AuthHarness(
                server,
                users,
                grpc_loop,
                auth_pb2_grpc.AuthServiceStub(channel),
                search_pb2_grpc.SearchServiceStub(channel),
            )
    finally:
        pool.close()


def login(h: AuthHarness, username: str, password: str = PASSWORD) -> auth_pb2.LoginResponse:
    return h.auth.Login(auth_pb2.LoginRequest(username=username, password=password))


def search_as(h: AuthHarness, access_token: str) -> str:
    reply = h.search.Search(
        search_pb2.SearchRequest(query="q"), metadata=(("authorization", f"Bearer {access_token}"),)
    )
    return reply.results[0].document_title


def error_of(call: Any, *args: Any, **kwargs: Any) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, grpc.Call)  # a sync call's RpcError is also the grpc.Call
    return caught.value


def test_login_returns_working_tokens(harness: AuthHarness) -> None:
    username = harness.add_user(tenant="acme")
    before = datetime.now(UTC)
    reply = login(harness, username)
    assert (reply.token_type, reply.role, reply.tenant) == ("Bearer", "user", "acme")
    access_expiry = reply.access_token_expires_at.ToDatetime(tzinfo=UTC)
    refresh_expiry = reply.refresh_token_expires_at.ToDatetime(tzinfo=UTC)
    assert timedelta(minutes=29) < access_expiry - before <= timedelta(minutes=30)
    assert timedelta(days=6, hours=23) < refresh_expiry - before <= timedelta(days=7)
    assert search_as(harness, reply.access_token) == f"acme/{username}"


def test_refresh_token_does_not_open_protected_rpcs(harness: AuthHarness) -> None:
    reply = login(harness, harness.add_user())
    error = error_of(search_as, harness, reply.refresh_token)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("case", ["wrong password", "unknown user"])
def test_bad_credentials_are_unauthenticated_and_indistinguishable(harness: AuthHarness, case: str) -> None:
    username = harness.add_user() if case == "wrong password" else "nobody-here"
    password = "wrong password!" if case == "wrong password" else PASSWORD
    error = error_of(login, harness, username, password)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "wrong username or password"


def test_disabled_user_cannot_log_in(harness: AuthHarness) -> None:
    error = error_of(login, harness, harness.add_user(disabled=True))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "disabled" in error.details()


def test_empty_username_is_invalid_argument(harness: AuthHarness) -> None:
    error = error_of(login, harness, "")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "username: must not be empty"


def test_refresh_issues_a_new_access_token(harness: AuthHarness) -> None:
    username = harness.add_user(role=Role.READONLY, tenant="globex")
    tokens = login(harness, username)
    reply = harness.auth.Refresh(auth_pb2.RefreshRequest(refresh_token=tokens.refresh_token))
    assert reply.token_type == "Bearer"
    assert reply.access_token
    assert search_as(harness, reply.access_token) == f"globex/{username}"


def test_refresh_refuses_access_tokens_and_disabled_users(harness: AuthHarness) -> None:
    username = harness.add_user()
    tokens = login(harness, username)
    error = error_of(harness.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=tokens.access_token))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "an access token cannot be used as a refresh token" in error.details()
    harness.loop.run(harness.users.set_disabled(username, True))
    error = error_of(harness.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=tokens.refresh_token))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "log in again" in error.details()


def test_permission_follows_the_role(harness: AuthHarness) -> None:
    # readonly has query:execute, admin gets it through system:admin.
    for role in (Role.READONLY, Role.ADMIN):
        username = harness.add_user(role=role)
        assert search_as(harness, login(harness, username).access_token).endswith(username)
