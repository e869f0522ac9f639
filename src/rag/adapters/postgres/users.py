"""User accounts in PostgreSQL (table ``users``); implements :class:`rag.core.authentication.UserStore`.

Bound parameters only. Driver errors become :mod:`rag.core.errors` here: a duplicate name is
:class:`AlreadyExists`, a value the table's checks refuse is :class:`InvalidInput`; the pool
(:mod:`rag.adapters.postgres.pool`) makes an unreachable database :class:`Unavailable`.

Disabling an account or changing its role or tenant raises its ``token_version`` (a trigger
of migration 0008 does, whoever runs the UPDATE); :meth:`UserRepository.revoke_tokens` raises
it directly. Either way every token issued before stops working (SPEC §4).

The methods are coroutines (the authenticator's port is async); each runs its statements on
the process's blocking pool in a worker thread, the one way the API reaches PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.rows import from_row
from rag.core.auth import Role, validate_tenant, validate_username
from rag.core.authentication import UserAccount
from rag.core.errors import AlreadyExists, InvalidInput, NotFound

_INSERT = """
    INSERT INTO users (username, password_hash, role, tenant) VALUES (%s, %s, %s, %s)
    RETURNING username, tenant, role, password_hash, disabled, created_at, token_version
"""
_SELECT_ONE = """
    SELECT username, tenant, role, password_hash, disabled, created_at, token_version
    FROM users WHERE username = %s
"""
_SELECT_MANY = """
    SELECT username, tenant, role, password_hash, disabled, created_at, token_version FROM users
    WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s
    ORDER BY tenant, username
"""
# A deleted account's name keeps the version after its last (migration 0012).
_SELECT_TOKEN_VERSION = """
    SELECT token_version FROM users WHERE username = %(username)s
    UNION ALL
    SELECT token_version FROM retired_usernames WHERE username = %(username)s
"""  # noqa: S105
_SET_DISABLED = "UPDATE users SET disabled = %s WHERE username = %s"
_SET_PASSWORD_HASH = "UPDATE users SET password_hash = %s WHERE username = %s"  # noqa: S105
_SET_ROLE = "UPDATE users SET role = %s WHERE username = %s"
_SET_TENANT = "UPDATE users SET tenant = %s WHERE username = %s"
_REVOKE_TOKENS = (
    "UPDATE users SET token_version = token_version + 1 WHERE username = %s RETURNING token_version"
)


def _account(row: dict[str, Any]) -> UserAccount:
    return from_row(UserAccount, row, role=Role(row["role"]))


class UserRepository:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    async def add(self, username: str, password_hash: str, role: Role, tenant: str) -> UserAccount:
        validate_username(username)
        validate_tenant(tenant)

        def insert() -> UserAccount:
            with self._cursor() as cur:
                try:
                    cur.execute(_INSERT, (username, password_hash, role.value, tenant))
                except pg_errors.UniqueViolation:
                    raise AlreadyExists(f"the user {username!r} exists already") from None
                except pg_errors.ForeignKeyViolation:
                    raise InvalidInput(f"unknown role {role.value!r}", field="role") from None
                except pg_errors.CheckViolation as exc:
                    raise InvalidInput(f"refused by the users table: {exc.diag.constraint_name}") from None
                row = cur.fetchone()
            assert row is not None
            return _account(row)

        return await _in_thread(insert)

    async def get(self, username: str) -> UserAccount | None:
        def select() -> UserAccount | None:
            with self._cursor() as cur:
                cur.execute(_SELECT_ONE, (username,))
                row = cur.fetchone()
            return _account(row) if row else None

        return await _in_thread(select)

    async def list(self, tenant: str | None = None) -> list[UserAccount]:
        """Every user, or the users of ``tenant``, by tenant and name."""

        def select() -> list[UserAccount]:
            with self._cursor() as cur:
                cur.execute(_SELECT_MANY, {"tenant": tenant})
                return [_account(row) for row in cur.fetchall()]

        return await _in_thread(select)

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._update(_SET_DISABLED, username, disabled)

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self._update(_SET_PASSWORD_HASH, username, password_hash)

    async def set_role(self, username: str, role: Role) -> None:
        """Give the user ``role``; the user's existing tokens stop working."""
        await self._update(_SET_ROLE, username, role.value)

    async def set_tenant(self, username: str, tenant: str) -> None:
        """Move the user to ``tenant``; the user's existing tokens stop working."""
        await self._update(_SET_TENANT, username, validate_tenant(tenant))

    async def revoke_tokens(self, username: str) -> int:
        """End every token issued to the user so far; the new token version."""

        def revoke() -> dict[str, Any] | None:
            with self._cursor() as cur:
                cur.execute(_REVOKE_TOKENS, (username,))
                return cur.fetchone()

        row = await _in_thread(revoke)
        if row is None:
            raise NotFound(f"no user named {username!r}")
        return int(row["token_version"])

    async def token_version(self, username: str) -> int:
        """The user's token version (a deleted user's: the one after its last); 0 for an unknown user."""

        def select() -> dict[str, Any] | None:
            with self._cursor() as cur:
                cur.execute(_SELECT_TOKEN_VERSION, {"username": username})
                return cur.fetchone()

        row = await _in_thread(select)
        return int(row["token_version"]) if row else 0

    async def _update(self, query: str, username: str, value: object) -> None:
        def update() -> int:
            with self._cursor() as cur:
                try:
                    cur.execute(query, (value, username))
                except pg_errors.ForeignKeyViolation:
                    raise InvalidInput(f"unknown role {value!r}", field="role") from None
                except pg_errors.CheckViolation as exc:
                    raise InvalidInput(f"refused by the users table: {exc.diag.constraint_name}") from None
                return cur.rowcount

        if await _in_thread(update) == 0:
            raise NotFound(f"no user named {username!r}")

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A cursor in a transaction that commits on success (the pool translates driver errors)."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            yield cur


T = TypeVar("T")


async def _in_thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)
