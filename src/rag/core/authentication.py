"""Logging in, refreshing, and checking access tokens: passwords in, tokens out (SPEC §4).

The rules live here; the ports below are implemented by adapters (PostgreSQL users, argon2
passwords, JWT tokens, token versions kept fresh by the database). Every failure a caller can
cause is :class:`Unauthenticated` with one message for "no such user" and "wrong password", so
the answer does not reveal which.

Revocation: each account has a token version, raised when it is disabled, changes role or
tenant, or has its tokens revoked. Tokens carry the version they were issued under; one below
the account's current version is refused, by :class:`AccessTokens` on every call and by
:meth:`Authenticator.refresh`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rag.core.auth import Principal, Role
from rag.core.errors import InvalidInput, RagError, Unauthenticated
from rag.core.throttle import LoginThrottle

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 8
# Bounds the hashing work one request can cause.
MAX_PASSWORD_CHARS = 1024
_BAD_CREDENTIALS = "wrong username or password"
_REVOKED = "revoked: the account was disabled, its role or tenant changed, or its tokens were revoked"


@dataclass(frozen=True, slots=True)
class UserAccount:
    username: str
    tenant: str
    role: Role
    password_hash: str
    disabled: bool = False
    created_at: datetime | None = None
    token_version: int = 0

    def principal(self) -> Principal:
        return Principal.of(self.username, self.tenant, self.role, token_version=self.token_version)


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


class TokenVersions(Protocol):
    async def current(self, username: str) -> int:
        """The account's token version now; 0 for an account that was never revoked or is unknown."""
        ...


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


class AccessTokens:
    """Checks the access token of every call: valid, and not revoked since it was issued.

    Without ``versions`` revocation is not checked (tokens then live until they expire).
    """

    def __init__(self, tokens: TokenCodec, versions: TokenVersions | None = None) -> None:
        self._tokens = tokens
        self._versions = versions

    async def authenticate(self, access_token: str) -> Principal:
        """The principal of a valid, unrevoked access token; :class:`Unauthenticated` otherwise."""
        principal = self._tokens.verify_access(access_token)
        if self._versions is None:
            return principal
        # After the codec's memory of verified tokens: a remembered token is checked too.
        if principal.token_version < await self._versions.current(principal.username):
            raise Unauthenticated(f"access token {_REVOKED}; log in again")
        return principal


class Authenticator:
    """Logs users in and refreshes their access tokens.

    With a ``throttle``, login attempts are limited per username and per client address.
    """

    def __init__(
        self,
        users: UserStore,
        passwords: PasswordHasher,
        tokens: TokenCodec,
        *,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._tokens = tokens
        self._throttle = throttle

    async def login(self, username: str, password: str, *, client: str | None = None) -> Session:
        """A session for the account; ``client`` is the caller's address, for the throttle."""
        if not username:
            raise InvalidInput("must not be empty", field="username")
        if not password:
            raise InvalidInput("must not be empty", field="password")
        if len(username) > 128 or len(password) > MAX_PASSWORD_CHARS:
            raise Unauthenticated(_BAD_CREDENTIALS)
        if self._throttle is not None:
            self._throttle.admit(username, client)
        user = await self._users.get(username)
        ok = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok:
            raise Unauthenticated(_BAD_CREDENTIALS)
        if self._throttle is not None:
            self._throttle.succeeded(username)
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
        """A new access token for the user of ``refresh_token``.

        The account is read again, so a disabled or deleted user, one moved to another tenant
        or given another role, or one whose tokens were revoked, cannot refresh.
        """
        if not refresh_token:
            raise InvalidInput("must not be empty", field="refresh_token")
        claimed = self._tokens.verify_refresh(refresh_token)
        user = await self._users.get(claimed.username)
        if user is None or user.disabled or user.tenant != claimed.tenant:
            raise Unauthenticated("the refresh token's account is disabled or gone; log in again")
        if claimed.token_version < user.token_version:
            raise Unauthenticated(f"refresh token {_REVOKED}; log in again")
        principal = user.principal()
        return principal, self._tokens.issue_access(principal)

    async def _upgrade_hash(self, username: str, password: str) -> None:
        # Best effort: a failure here must not fail a login that has already succeeded.
        try:
            await self._users.set_password_hash(username, await self._passwords.hash(password))
        except RagError as exc:
            log.warning("could not upgrade the password hash of %s: %s", username, exc)
