"""Logging in and refreshing: passwords in, tokens out (SPEC §4).

The rules live here; the ports below are implemented by adapters (PostgreSQL users, argon2
passwords, JWT tokens). Every failure a caller can cause is :class:`Unauthenticated` with one
message for "no such user" and "wrong password", so the answer does not reveal which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rag.core.auth import Principal, Role
from rag.core.errors import InvalidInput, RagError, Unauthenticated

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 8
# Bounds the hashing work one request can cause.
MAX_PASSWORD_CHARS = 1024
_BAD_CREDENTIALS = "wrong username or password"


@dataclass(frozen=True, slots=True)
class UserAccount:
    username: str
    tenant: str
    role: Role
    password_hash: str
    disabled: bool = False
    created_at: datetime | None = None

    def principal(self) -> Principal:
        return Principal.of(self.username, self.tenant, self.role)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login returns."""

    principal: Principal
    access: IssuedToken
    refresh: IssuedToken


class UserStore(Protocol):
    async def get(self, username: str) -> UserAccount | None: ...

    async def set_password_hash(self, username: str, password_hash: str) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; ``None`` (no such user) costs the same and is False."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenCodec(Protocol):
    def issue_access(self, principal: Principal) -> IssuedToken: ...

    def issue_refresh(self, principal: Principal) -> IssuedToken: ...

    def verify_access(self, token: str) -> Principal:
        """The principal of a valid access token; :class:`Unauthenticated` otherwise."""
        ...

    def verify_refresh(self, token: str) -> Principal:
        """The principal a valid refresh token was issued to; :class:`Unauthenticated` otherwise."""
        ...


def validate_password(password: str) -> str:
    """The rule for new passwords (login accepts whatever was stored)."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters", field="password"
        )
    return password


class Authenticator:
    """Logs users in and refreshes their access tokens."""

    def __init__(self, users: UserStore, passwords: PasswordHasher, tokens: TokenCodec) -> None:
        self._users = users
        self._passwords = passwords
        self._tokens = tokens

    async def login(self, username: str, password: str) -> Session:
        if not username:
            raise InvalidInput("must not be empty", field="username")
        if not password:
            raise InvalidInput("must not be empty", field="password")
        if len(username) > 128 or len(password) > MAX_PASSWORD_CHARS:
            raise Unauthenticated(_BAD_CREDENTIALS)
        user = await self._users.get(username)
        ok = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok:
            raise Unauthenticated(_BAD_CREDENTIALS)
        if user.disabled:
            raise Unauthenticated(f"the account {username!r} is disabled; ask an administrator")
        if self._passwords.needs_rehash(user.password_hash):
            await self._upgrade_hash(username, password)
        principal = user.principal()
        return Session(
            principal=principal,
            access=self._tokens.issue_access(principal),
            refresh=self._tokens.issue_refresh(principal),
        )

    async def refresh(self, refresh_token: str) -> tuple[Principal, IssuedToken]:
        """A new access token for the user of ``refresh_token``, with the user's current role.

        The account is read again, so a disabled or deleted user, or one moved to another
        tenant, cannot refresh.
        """
        if not refresh_token:
            raise InvalidInput("must not be empty", field="refresh_token")
        claimed = self._tokens.verify_refresh(refresh_token)
        user = await self._users.get(claimed.username)
        if user is None or user.disabled or user.tenant != claimed.tenant:
            raise Unauthenticated("the refresh token's account is disabled or gone; log in again")
        principal = user.principal()
        return principal, self._tokens.issue_access(principal)

    def authenticate(self, access_token: str) -> Principal:
        return self._tokens.verify_access(access_token)

    async def _upgrade_hash(self, username: str, password: str) -> None:
        # Best effort: a failure here must not fail a login that has already succeeded.
        try:
            await self._users.set_password_hash(username, await self._passwords.hash(password))
        except RagError as exc:
            log.warning("could not upgrade the password hash of %s: %s", username, exc)
