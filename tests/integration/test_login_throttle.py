"""Login throttling on a real server over the real PostgreSQL: per username and per client
address, where the address comes from X-Forwarded-For only when a trusted proxy sends it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network

import argon2
import grpc
import pytest

from grpc_services.servicers.auth import AuthServicer
from rag.adapters.passwords import Argon2Passwords
from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.users import UserRepository
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Role
from rag.core.authentication import Authenticator
from rag.core.throttle import LoginThrottle
from rag.proto.rag.v1 import auth_pb2, auth_pb2_grpc
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
THROTTLED = "too many login attempts; retry in 60 s"  # one attempt a minute once a burst is spent


@pytest.fixture(scope="module")
def users(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[UserRepository]:
    with create_pool(settings, min_size=1, name="test-login-throttle") as pool:
        yield UserRepository(pool)


@contextmanager
def login_server(
    grpc_loop: EventLoopThread,
    settings: Settings,
    users: UserRepository,
    *,
    trusted_proxies: str = "",
    username_burst: int = 100,
    address_burst: int = 100,
) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    proxies = tuple(ip_network(cidr) for cidr in trusted_proxies.split(",") if cidr)
    throttle = LoginThrottle(
        username_per_minute=1,
        username_burst=username_burst,
        address_per_minute=1,
        address_burst=address_burst,
    )
    passwords = Argon2Passwords(CHEAP)
    authenticator = Authenticator(users, passwords, JwtTokens.from_settings(settings), throttle=throttle)
    configured = settings.model_copy(update={"TRUSTED_PROXIES": proxies})
    try:
        with (
            running_server(grpc_loop, configured, [AuthServicer(authenticator)]) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            yield auth_pb2_grpc.AuthServiceStub(channel)
    finally:
        passwords.close()


def login(stub: auth_pb2_grpc.AuthServiceStub, username: str, password: str, forwarded_for: str) -> str:
    """``ok``, or the status code and message of the refusal."""
    try:
        stub.Login(
            auth_pb2.LoginRequest(username=username, password=password),
            metadata=(("x-forwarded-for", forwarded_for),),
        )
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    return "ok"


def unique() -> str:
    return f"lt-{uuid.uuid4().hex[:10]}"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    grpc_loop: EventLoopThread, settings: Settings, users: UserRepository
) -> None:
    with login_server(grpc_loop, settings, users, address_burst=3) as stub:
        # Each attempt claims another client, but the peer (127.0.0.1) is no trusted proxy.
        outcomes = [login(stub, unique(), "wrong-password", f"203.0.113.{i}") for i in range(5)]
    assert (
        outcomes
        == ["UNAUTHENTICATED: wrong username or password"] * 3 + [f"RESOURCE_EXHAUSTED: {THROTTLED}"] * 2
    )


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(
    grpc_loop: EventLoopThread, settings: Settings, users: UserRepository
) -> None:
    with login_server(grpc_loop, settings, users, trusted_proxies="127.0.0.0/8", address_burst=3) as stub:
        first = [login(stub, unique(), "wrong-password", "198.51.100.7, 203.0.113.1") for _ in range(4)]
        # What the client wrote left of the proxy's hop does not matter: the same client.
        again = login(stub, unique(), "wrong-password", "192.0.2.99, 203.0.113.1")
        second = login(stub, unique(), "wrong-password", "203.0.113.2")
    assert first == ["UNAUTHENTICATED: wrong username or password"] * 3 + [f"RESOURCE_EXHAUSTED: {THROTTLED}"]
    assert again == f"RESOURCE_EXHAUSTED: {THROTTLED}"
    assert second == "UNAUTHENTICATED: wrong username or password"


def test_guesses_at_one_username_from_many_addresses_are_throttled(
    grpc_loop: EventLoopThread, settings: Settings, users: UserRepository
) -> None:
    existing = unique()
    grpc_loop.run(users.add(existing, CHEAP.hash(PASSWORD), Role.USER, "acme"))
    with login_server(grpc_loop, settings, users, trusted_proxies="127.0.0.1/32", username_burst=3) as stub:
        answers = {
            name: [login(stub, name, "wrong-password", f"203.0.113.{i}") for i in range(5)]
            for name in (existing, unique())
        }
        # Even the right password waits now: the throttle answers before the password is checked.
        right_password = login(stub, existing, PASSWORD, "198.51.100.1")
    expected = ["UNAUTHENTICATED: wrong username or password"] * 3 + [f"RESOURCE_EXHAUSTED: {THROTTLED}"] * 2
    # The same answers for an account that exists and one that does not.
    assert list(answers.values()) == [expected, expected]
    assert right_password == f"RESOURCE_EXHAUSTED: {THROTTLED}"


def test_successful_logins_do_not_lock_the_account(
    grpc_loop: EventLoopThread, settings: Settings, users: UserRepository
) -> None:
    name = unique()
    grpc_loop.run(users.add(name, CHEAP.hash(PASSWORD), Role.USER, "acme"))
    with login_server(grpc_loop, settings, users, trusted_proxies="127.0.0.1/32", username_burst=2) as stub:
        outcomes = [login(stub, name, PASSWORD, f"203.0.113.{i}") for i in range(4)]
    assert outcomes == ["ok"] * 4
