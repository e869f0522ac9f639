from __future__ import annotations

import asyncio
from dataclasses import replace

import argon2
import pytest

from rag.adapters.passwords import Argon2Passwords
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Role
from rag.core.authentication import AccessTokens, Authenticator, UserAccount, validate_password
from rag.core.errors import InvalidInput, Overloaded, Unauthenticated, Unavailable
from rag.core.throttle import LoginThrottle

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
    assert TOKENS.verify_access(session.access.token) == session.principal
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
    assert TOKENS.verify_access(access.token).role is Role.READONLY


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


class MemoryVersions:
    """Token versions read from the in-memory users (what the database map answers)."""

    def __init__(self, users: MemoryUsers) -> None:
        self.users = users

    async def current(self, username: str) -> int:
        account = self.users.accounts.get(username)
        return account.token_version if account else 0


def revoke(users: MemoryUsers, username: str) -> None:
    account = users.accounts[username]
    users.accounts[username] = replace(account, token_version=account.token_version + 1)


def test_access_token_stops_working_when_the_version_rises(auth: Authenticator, users: MemoryUsers) -> None:
    access = AccessTokens(TOKENS, MemoryVersions(users))
    old = asyncio.run(auth.login("alice", "alice-password")).access.token
    assert asyncio.run(access.authenticate(old)).username == "alice"
    revoke(users, "alice")
    with pytest.raises(Unauthenticated, match=r"^access token revoked: .*; log in again$"):
        asyncio.run(access.authenticate(old))
    new = asyncio.run(auth.login("alice", "alice-password")).access.token
    assert asyncio.run(access.authenticate(new)).token_version == 1


def test_without_versions_revocation_is_not_checked(auth: Authenticator, users: MemoryUsers) -> None:
    old = asyncio.run(auth.login("alice", "alice-password")).access.token
    revoke(users, "alice")
    assert asyncio.run(AccessTokens(TOKENS).authenticate(old)).username == "alice"


def test_refresh_token_stops_working_when_the_version_rises(auth: Authenticator, users: MemoryUsers) -> None:
    session = asyncio.run(auth.login("alice", "alice-password"))
    revoke(users, "alice")
    with pytest.raises(Unauthenticated, match=r"^refresh token revoked: .*; log in again$"):
        asyncio.run(auth.refresh(session.refresh.token))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttled(
    users: MemoryUsers, clock: Clock, *, username_burst: int = 3, address_burst: int = 5
) -> Authenticator:
    throttle = LoginThrottle(
        username_per_minute=6,
        username_burst=username_burst,
        address_per_minute=60,
        address_burst=address_burst,
        clock=clock,
    )
    return Authenticator(users, Argon2Passwords(CHEAP), TOKENS, throttle=throttle)


def attempt(auth: Authenticator, username: str, password: str, client: str) -> str:
    try:
        asyncio.run(auth.login(username, password, client=client))
    except (Unauthenticated, Overloaded) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_failures_on_one_username_are_throttled_across_addresses(users: MemoryUsers, username: str) -> None:
    clock = Clock()
    auth = throttled(users, clock)
    outcomes = [attempt(auth, username, "wrong", f"10.0.0.{i}") for i in range(5)]
    # The same answers whether the account exists or not.
    assert (
        outcomes
        == ["Unauthenticated: wrong username or password"] * 3
        + ["Overloaded: too many login attempts; retry in 10 s"] * 2
    )
    clock.now += 10  # one token back (6 a minute)
    assert attempt(auth, username, "wrong", "10.0.0.9") == "Unauthenticated: wrong username or password"


def test_successful_logins_do_not_wear_down_the_username(users: MemoryUsers) -> None:
    auth = throttled(users, Clock(), username_burst=2, address_burst=100)
    assert [attempt(auth, "alice", "alice-password", f"10.0.0.{i}") for i in range(6)] == ["ok"] * 6


def test_every_attempt_counts_against_the_address(users: MemoryUsers) -> None:
    auth = throttled(users, Clock(), username_burst=100, address_burst=3)
    assert attempt(auth, "alice", "alice-password", "10.0.0.1") == "ok"
    assert attempt(auth, "nobody", "x-password", "10.0.0.1").startswith("Unauthenticated")
    assert attempt(auth, "other", "x-password", "10.0.0.1").startswith("Unauthenticated")
    assert attempt(auth, "alice", "alice-password", "10.0.0.1").startswith("Overloaded: too many login")
    assert attempt(auth, "alice", "alice-password", "10.0.0.2") == "ok"  # another address: its own bucket


def test_a_refused_attempt_takes_nothing(users: MemoryUsers) -> None:
    clock = Clock()
    auth = throttled(users, clock, username_burst=1, address_burst=1)
    assert attempt(auth, "nobody", "x-password", "10.0.0.1").startswith("Unauthenticated")
    # The address is empty now: a refused attempt must not spend another username's token.
    assert attempt(auth, "alice", "alice-password", "10.0.0.1").startswith("Overloaded")
    assert attempt(auth, "alice", "alice-password", "10.0.0.2") == "ok"
