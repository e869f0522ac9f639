"""User accounts in PostgreSQL (table ``users``); implements :class:`rag.core.authentication.UserStore`.

Bound parameters only. Driver errors become :mod:`rag.core.errors` here: a duplicate name is
:class:`AlreadyExists`, a value the table's checks refuse is :class:`InvalidInput`, an
unreachable database is :class:`Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from rag.core.auth import Role, validate_tenant, validate_username
from rag.core.authentication import UserAccount
from rag.core.errors import AlreadyExists, DeadlineExceeded, InvalidInput, NotFound, Unavailable

_INSERT = """
    INSERT INTO users (username, password_hash, role, tenant) VALUES (%s, %s, %s, %s)
    RETURNING username, tenant, role, password_hash, disabled, created_at
"""
_SELECT_ONE = """
    SELECT username, tenant, role, password_hash, disabled, created_at FROM users WHERE username = %s
"""
_SELECT_MANY = """
    SELECT username, tenant, role, password_hash, disabled, created_at FROM users
    WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s
    ORDER BY tenant, username
"""
_SET_DISABLED = "UPDATE users SET disabled = %s WHERE username = %s"
_SET_PASSWORD_HASH = "UPDATE users SET password_hash = %s WHERE username = %s"  # noqa: S105


def _account(row: dict[str, Any]) -> UserAccount:
    return UserAccount(
        username=row["username"],
        tenant=row["tenant"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


class UserRepository:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def add(self, username: str, password_hash: str, role: Role, tenant: str) -> UserAccount:
        validate_username(username)
        validate_tenant(tenant)
        async with self._cursor() as cur:
            try:
                await cur.execute(_INSERT, (username, password_hash, role.value, tenant))
            except pg_errors.UniqueViolation:
                raise AlreadyExists(f"the user {username!r} exists already") from None
            except pg_errors.ForeignKeyViolation:
                raise InvalidInput(f"unknown role {role.value!r}", field="role") from None
            except pg_errors.CheckViolation as exc:
                raise InvalidInput(f"refused by the users table: {exc.diag.constraint_name}") from None
            row = await cur.fetchone()
        assert row is not None
        return _account(row)

    async def get(self, username: str) -> UserAccount | None:
        async with self._cursor() as cur:
            await cur.execute(_SELECT_ONE, (username,))
            row = await cur.fetchone()
        return _account(row) if row else None

    async def list(self, tenant: str | None = None) -> list[UserAccount]:
        """Every user, or the users of ``tenant``, by tenant and name."""
        async with self._cursor() as cur:
            await cur.execute(_SELECT_MANY, {"tenant": tenant})
            rows = await cur.fetchall()
        return [_account(row) for row in rows]

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._update(_SET_DISABLED, username, disabled)

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self._update(_SET_PASSWORD_HASH, username, password_hash)

    async def _update(self, query: str, username: str, value: object) -> None:
        async with self._cursor() as cur:
            await cur.execute(query, (value, username))
            if cur.rowcount == 0:
                raise NotFound(f"no user named {username!r}")

    @asynccontextmanager
    async def _cursor(self) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
        """A cursor in a transaction that commits on success."""
        try:
            async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except PoolTimeout:
            raise Unavailable("no database connection free or reachable in time; retry later") from None
        except pg_errors.QueryCanceled:
            raise DeadlineExceeded("the database query ran past its statement timeout") from None
        except psycopg.OperationalError:
            raise Unavailable("the database is unreachable; retry later") from None
