"""Revoking tokens: two API servers, each with its own pool and token-version listener, over the
real PostgreSQL. Disabling a user, changing its role or tenant, or `rag users revoke` ends
the user's tokens on both; a token issued afterwards works."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import grpc
import psycopg
import pytest

from grpc_services.context import current_principal
from grpc_services.servicers.auth import AuthServicer
from rag.adapters.passwords import Argon2Passwords
from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.token_versions import TokenVersionMap
from rag.adapters.postgres.users import UserRepository
from rag.adapters.tokens import JwtTokens
from rag.cli import main as rag_cli
from rag.core.auth import Role
from rag.core.authentication import Authenticator
from rag.proto.rag.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    document_pb2,
    document_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import Settings
from rag.stack.process import free_port
from rag.stack.stack import LocalStack
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
# How long a revocation may take to reach both servers before the test gives up (they are
# expected to take milliseconds; the bound only keeps a broken build from hanging).
GIVE_UP_S = 5.0
REPO = Path(__file__).resolve().parents[2]


class WhoAmI(search_pb2_grpc.SearchServiceServicer):
    """Answers with the caller's tenant, name and role."""

    async def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        p = current_principal()
        title = f"{p.tenant}/{p.username}/{p.role.value}"
        return search_pb2.SearchResponse(results=[common_pb2.SearchResult(document_title=title)])


@dataclass
class Api:
    """One API server, as `python -m grpc_services` wires it: its own pool and listener."""

    auth: auth_pb2_grpc.AuthServiceStub
    search: search_pb2_grpc.SearchServiceStub
    versions: TokenVersionMap


@dataclass
class Cluster:
    servers: list[Api]
    users: UserRepository
    loop: EventLoopThread
    cli: Callable[..., int]

    def add_user(self, role: Role = Role.USER) -> str:
        return self.add_user_named(f"rv-{uuid.uuid4().hex[:10]}", role)

    def add_user_named(self, name: str, role: Role = Role.USER) -> str:
        self.loop.run(self.users.add(name, CHEAP.hash(PASSWORD), role, "acme"))
        return name

    def login(self, username: str) -> auth_pb2.LoginResponse:
        return self.servers[0].auth.Login(auth_pb2.LoginRequest(username=username, password=PASSWORD))

    def whoami(self, token: str) -> list[str | grpc.StatusCode]:
        """Each server's answer to a call with ``token``: who it thinks calls, or the error code."""
        answers: list[str | grpc.StatusCode] = []
        for server in self.servers:
            try:
                reply = server.search.Search(
                    search_pb2.SearchRequest(query="q"), metadata=(("authorization", f"Bearer {token}"),)
                )
                answers.append(reply.results[0].document_title)
            except grpc.RpcError as exc:
                answers.append(exc.code())
        return answers

    def until_refused(self, token: str) -> list[str | grpc.StatusCode]:
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            answers = self.whoami(token)
            if all(a is grpc.StatusCode.UNAUTHENTICATED for a in answers) or time.monotonic() > deadline:
                return answers
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(grpc_loop: EventLoopThread, settings: Settings, stack: LocalStack) -> Iterator[Cluster]:
    with ExitStack() as cleanup:
        servers = []
        users = None
        for i in range(2):
            pool = create_pool(settings, min_size=1, name=f"test-revoke-{i}")
            cleanup.callback(pool.close)
            users = UserRepository(pool)
            versions = TokenVersionMap(users, conninfo=settings.DATABASE_URL)
            grpc_loop.run(versions.start())
            cleanup.callback(grpc_loop.run, versions.close())
            assert versions.listening
            passwords = Argon2Passwords(CHEAP)
            cleanup.callback(passwords.close)
            authenticator = Authenticator(users, passwords, JwtTokens.from_settings(settings))
            server = cleanup.enter_context(
                running_server(
                    grpc_loop, settings, [AuthServicer(authenticator), WhoAmI()], token_versions=versions
                )
            )
            channel = cleanup.enter_context(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
            servers.append(
                Api(
                    auth_pb2_grpc.AuthServiceStub(channel),
                    search_pb2_grpc.SearchServiceStub(channel),
                    versions,
                )
            )

        def cli(*args: str) -> int:
            return rag_cli(["--env-file", str(stack.env_path), "users", *args])

        assert users is not None
        yield Cluster(servers, users, grpc_loop, cli)


@pytest.mark.parametrize(
    ("change", "role_after"),
    [
        (("revoke",), "user"),
        (("set-role", "{name}", "readonly"), "readonly"),
        (("set-tenant", "{name}", "globex"), "user"),
        (("disable",), "user"),
    ],
)
def test_a_change_ends_the_users_tokens_on_every_server(
    cluster: Cluster, change: tuple[str, ...], role_after: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = cluster.add_user()
    old = cluster.login(name)
    assert cluster.whoami(old.access_token) == [f"acme/{name}/user"] * 2

    action, *args = change
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cluster.cli(action, *([a.format(name=name) for a in args] or [name])) == 0

    assert cluster.until_refused(old.access_token) == [grpc.StatusCode.UNAUTHENTICATED] * 2
    with pytest.raises(grpc.RpcError) as refused:
        cluster.servers[1].search.Search(
            search_pb2.SearchRequest(query="q"), metadata=(("authorization", f"Bearer {old.access_token}"),)
        )
    assert "access token revoked" in (refused.value.details() or "")
    assert "log in again" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as refresh:
        cluster.servers[1].auth.Refresh(auth_pb2.RefreshRequest(refresh_token=old.refresh_token))
    assert refresh.value.code() is grpc.StatusCode.UNAUTHENTICATED

    if action == "disable":
        assert cluster.cli("enable", name) == 0
    new = cluster.login(name)
    tenant = "globex" if action == "set-tenant" else "acme"
    assert cluster.whoami(new.access_token) == [f"{tenant}/{name}/{role_after}"] * 2
    # The old token stays dead, also after re-enabling.
    assert cluster.whoami(old.access_token) == [grpc.StatusCode.UNAUTHENTICATED] * 2


def test_deleting_the_account_ends_its_tokens_and_a_new_account_of_that_name_starts_fresh(
    cluster: Cluster, grpc_loop: EventLoopThread, settings: Settings
) -> None:
    """A row deleted by an admin's SQL ends the account's tokens, on running servers, on a server
    started afterwards and without a listener; the name can be used again, and the old tokens
    stay dead for the new account."""
    name = cluster.add_user()
    old = cluster.login(name)
    assert cluster.whoami(old.access_token) == [f"acme/{name}/user"] * 2

    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE username = %s", (name,))
    assert cluster.until_refused(old.access_token) == [grpc.StatusCode.UNAUTHENTICATED] * 2

    deaf = TokenVersionMap(cluster.users, conninfo=settings.DATABASE_URL)
    assert grpc_loop.run(deaf.current(name)) == 1  # read from the database
    later = TokenVersionMap(cluster.users, conninfo=settings.DATABASE_URL)
    grpc_loop.run(later.start())
    try:
        assert later.listening
        assert grpc_loop.run(later.current(name)) == 1  # loaded at start
    finally:
        grpc_loop.run(later.close())

    cluster.add_user_named(name)
    new = cluster.login(name)
    assert cluster.whoami(new.access_token) == [f"acme/{name}/user"] * 2
    assert cluster.whoami(old.access_token) == [grpc.StatusCode.UNAUTHENTICATED] * 2


def test_other_users_tokens_keep_working(cluster: Cluster) -> None:
    revoked, bystander = cluster.add_user(), cluster.add_user()
    revoked_token, bystander_token = (
        cluster.login(revoked).access_token,
        cluster.login(bystander).access_token,
    )
    cluster.loop.run(cluster.users.revoke_tokens(revoked))
    assert cluster.until_refused(revoked_token) == [grpc.StatusCode.UNAUTHENTICATED] * 2
    assert cluster.whoami(bystander_token) == [f"acme/{bystander}/user"] * 2


def test_without_its_listener_a_server_reads_the_database(
    cluster: Cluster, grpc_loop: EventLoopThread, settings: Settings
) -> None:
    # A map that is not listening (listener down, or not started yet) trusts no memory.
    deaf = TokenVersionMap(cluster.users, conninfo=settings.DATABASE_URL)
    name = cluster.add_user()
    assert not deaf.listening
    assert grpc_loop.run(deaf.current(name)) == 0
    grpc_loop.run(cluster.users.revoke_tokens(name))
    assert grpc_loop.run(deaf.current(name)) == 1
    assert grpc_loop.run(deaf.current(f"nobody-{uuid.uuid4().hex[:8]}")) == 0


def test_revoking_an_unknown_user_is_one_line(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster.cli("revoke", "nobody-here-at-all") == 2
    assert capsys.readouterr().err == "error: no user named 'nobody-here-at-all'\n"


def test_the_api_process_and_another_server_refuse_a_revoked_token(
    cluster: Cluster, app_env: dict[str, str], tmp_path: Path
) -> None:
    """`python -m grpc_services` as deployed (its own listener, wired by the application) next to
    a second server: a token of one works on both until `rag users revoke`."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **app_env,
        "GRPC_PORT": str(port),
        "METRICS_PORT": str(free_port()),
        "GRPC_GRACE_PERIOD_S": "1",
    }
    name = cluster.add_user()
    with (
        (tmp_path / "api.log").open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "grpc_services"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log
        ) as process,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
            documents = document_pb2_grpc.DocumentServiceStub(channel)
            token = (
                auth_pb2_grpc.AuthServiceStub(channel)
                .Login(auth_pb2.LoginRequest(username=name, password=PASSWORD), timeout=30)
                .access_token
            )

            def in_process() -> grpc.StatusCode:
                try:
                    documents.ListDocuments(
                        document_pb2.ListDocumentsRequest(),
                        metadata=(("authorization", f"Bearer {token}"),),
                        timeout=30,
                    )
                except grpc.RpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK

            assert in_process() is grpc.StatusCode.OK
            assert cluster.whoami(token)[0] == f"acme/{name}/user"
            assert cluster.cli("revoke", name) == 0
            deadline = time.monotonic() + GIVE_UP_S
            while in_process() is grpc.StatusCode.OK and time.monotonic() < deadline:
                time.sleep(0.05)
            assert in_process() is grpc.StatusCode.UNAUTHENTICATED
            assert cluster.until_refused(token)[0] is grpc.StatusCode.UNAUTHENTICATED
        finally:
            process.terminate()
            process.wait(timeout=30)
