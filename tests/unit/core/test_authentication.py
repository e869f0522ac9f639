from __future__ import annotations

import asyncio
from dataclasses import replace

import argon2
import pytest

from rag.adapters.passwords import Argon2Passwords
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Role
from rag.core.authentication import Authenticator, UserAccount, validate_password
from rag.core.errors import InvalidInput, Unauthenticated, Unavailable

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
TOKENS = JwtTokens("s" * 40)


class MemoryUsers:
    """An in-memory UserStore."""

    def __init__(self) -> None:
        self.accounts: dict[str, UserAccount] = {}
        self.fail_updates = False

    async def get(self, username: str) -> UserAccount | None:
        return self.accounts.get(username)

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        if self.fail_updates:
            raise Unavailable("database down")
        self.accounts[username] = replace(self.accounts[username], password_hash=password_hash)


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    password_hash = CHEAP.hash("alice-password")
    store.accounts["alice"] = UserAccount("alice", "acme", Role.USER, password_hash)
    store.accounts["off"] = UserAccount("off", "acme", Role.USER, password_hash, disabled=True)
    return store


@pytest.fixture
def auth(users: MemoryUsers) -> Authenticator:
    return Authenticator(users, Argon2Passwords(CHEAP), TOKENS)


def test_login_returns_tokens_for_the_users_role_and_tenant(auth: Authenticator) -> None:
    session = asyncio.run(auth.login("alice", "alice-password"))
    assert (session.principal.username, session.principal.tenant, session.principal.role) == (
        "alice",
        "acme",
        Role.USER,
    )
    assert auth.authenticate(session.access.token) == session.principal
    assert TOKENS.verify_refresh(session.refresh.token) == session.principal
    assert session.refresh.expires_at > session.access.expires_at


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("nobody", "alice-password")])
def test_wrong_user_or_password_gives_one_message(auth: Authenticator, username: str, password: str) -> None:
    with pytest.raises(Unauthenticated, match=r"^wrong username or password$"):
        asyncio.run(auth.login(username, password))


def test_disabled_user_cannot_log_in(auth: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="disabled"):
        asyncio.run(auth.login("off", "alice-password"))


@pytest.mark.parametrize(
    ("username", "password", "field"), [("", "x", "username"), ("alice", "", "password")]
)
def test_empty_credentials_name_the_field(
    auth: Authenticator, username: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{field}: must not be empty"):
        asyncio.run(auth.login(username, password))


def test_oversized_credentials_are_refused_without_hashing(auth: Authenticator) -> None:
    with pytest.raises(Unauthenticated):
        asyncio.run(auth.login("alice", "x" * 5000))
    with pytest.raises(Unauthenticated):
        asyncio.run(auth.login("a" * 500, "x"))


def test_login_upgrades_a_weak_hash(users: MemoryUsers) -> None:
    strong = argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    auth = Authenticator(users, Argon2Passwords(strong), TOKENS)
    before = users.accounts["alice"].password_hash
    asyncio.run(auth.login("alice", "alice-password"))
    after = users.accounts["alice"].password_hash
    assert after != before
    assert not strong.check_needs_rehash(after)


def test_failed_hash_upgrade_does_not_fail_the_login(users: MemoryUsers) -> None:
    users.fail_updates = True
    strong = argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    auth = Authenticator(users, Argon2Passwords(strong), TOKENS)
    assert asyncio.run(auth.login("alice", "alice-password")).principal.username == "alice"


def test_refresh_issues_an_access_token_with_the_current_role(
    auth: Authenticator, users: MemoryUsers
) -> None:
    session = asyncio.run(auth.login("alice", "alice-password"))
    users.accounts["alice"] = replace(users.accounts["alice"], role=Role.READONLY)
    principal, access = asyncio.run(auth.refresh(session.refresh.token))
    assert principal.role is Role.READONLY
    assert auth.authenticate(access.token).role is Role.READONLY


@pytest.mark.parametrize("change", ["disable", "delete", "move"])
def test_refresh_fails_when_the_account_changed(auth: Authenticator, users: MemoryUsers, change: str) -> None:
    session = asyncio.run(auth.login("alice", "alice-password"))
    if change == "disable":
        users.accounts["alice"] = replace(users.accounts["alice"], disabled=True)
    elif change == "delete":
        del users.accounts["alice"]
    else:
        users.accounts["alice"] = replace(users.accounts["alice"], tenant="other")
    with pytest.raises(Unauthenticated, match="log in again"):
        asyncio.run(auth.refresh(session.refresh.token))


def test_refresh_refuses_access_tokens_and_empty_input(auth: Authenticator) -> None:
    session = asyncio.run(auth.login("alice", "alice-password"))
    with pytest.raises(Unauthenticated, match="an access token cannot be used as a refresh token"):
        asyncio.run(auth.refresh(session.access.token))
    with pytest.raises(InvalidInput, match=r"^refresh_token: must not be empty"):
        asyncio.run(auth.refresh(""))


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_new_password_rule(password: str) -> None:
    with pytest.raises(InvalidInput, match=r"^password: must be 8 to 1024 characters"):
        validate_password(password)
    assert validate_password("eight888") == "eight888"
