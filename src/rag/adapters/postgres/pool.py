"""Connection pools built once per process from the settings (SPEC: 20 + 30 overflow, 30 s, 3600 s).

Their ``connection()`` translates driver errors (:mod:`rag.adapters.postgres.errors`): every
repository borrows its connections here, so none sees a psycopg error it did not expect.

Every checkout is checked, so a restart of PostgreSQL (or a terminated backend) costs no caller
an error once the server is back: an idle connection whose socket has something to read (the
server's FATAL message or its close) gets psycopg_pool's ``check_connection`` round trip, and
one that fails it makes the pool check every idle connection at once (after a restart they are
all dead) instead of discovering them one checkout, and one growing backoff, at a time. A
connection with nothing to read is handed out as it is: the poll (well under a microsecond)
saves the round trip that psycopg_pool's check alone would add to every checkout. Each pool's
backends carry ``rag-system/<pool name>`` as their ``application_name``.

While PostgreSQL is down the pool retries connecting with backoff; each series of attempts
gives up after :data:`RECONNECT_TIMEOUT_S` and the next checkout starts a new one, so the gap
between attempts stays under that and the pool is whole again within seconds of the server's
return (psycopg_pool's default, 300 s, let the gap grow to minutes).

A checkout waits at most :data:`UNREACHABLE_WAIT_S` while the pool knows the server is down
(its last connection attempt failed, or a pooled connection failed its check, and none has
connected since), so an RPC that needs PostgreSQL answers UNAVAILABLE in about that long instead
of holding its caller for the whole ``DATABASE_POOL_TIMEOUT``. A pool that is merely busy (every
connection lent, the server up) still waits the whole timeout. Each checkout also asks the pool
to grow, so the first one after the server's return connects and goes through.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from rag.adapters.postgres.errors import database_errors
from rag.core.errors import Unavailable
from rag.settings import Settings

RECONNECT_TIMEOUT_S = 10.0
UNREACHABLE_WAIT_S = 2.0


class _Reachability:
    """What a pool last learned of its server (see the module doc): down after a failed
    connection attempt (psycopg_pool counts them in its ``connections_errors`` statistic) or a
    failed check, up again once a new connection is configured."""

    def __init__(self) -> None:
        self._lost = False
        self._errors_when_up = 0

    def connected(self, errors: int) -> None:
        self._lost = False
        self._errors_when_up = errors

    def lost(self) -> None:
        self._lost = True

    def down(self, errors: int) -> bool:
        return self._lost or errors > self._errors_when_up


def _first_wait(budget: float) -> float:
    return min(budget, UNREACHABLE_WAIT_S)


def _has_news(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection is closed or its socket is readable (an error, a close)."""
    if conn.closed:
        return True
    poll = select.poll()
    poll.register(conn.fileno(), select.POLLIN)
    return bool(poll.poll(0))


class TranslatingPool(ConnectionPool):
    """A :class:`ConnectionPool` whose connections raise :mod:`rag.core.errors` and are checked
    on checkout (see the module doc)."""

    def __init__(
        self,
        *args: Any,
        configure: Callable[[psycopg.Connection[Any]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self._reachability = _Reachability()

        def configured(conn: psycopg.Connection[Any]) -> None:
            if configure is not None:
                configure(conn)
            self._reachability.connected(self._connection_errors())

        super().__init__(*args, check=self._check_on_checkout, configure=configured, **kwargs)

    def _connection_errors(self) -> int:
        return self.get_stats().get("connections_errors", 0)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        budget = self.timeout if timeout is None else timeout
        first = _first_wait(budget)
        try:
            return super().getconn(first)
        except PoolTimeout:
            if first >= budget or self._reachability.down(self._connection_errors()):
                raise
        return super().getconn(budget - first)

    def _check_on_checkout(self, conn: psycopg.Connection[Any]) -> None:
        if not _has_news(conn):
            return
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            self._reachability.lost()
            self.check()  # the others are likely dead too: replace them all now
            raise

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        with database_errors(), super().connection(timeout) as conn:
            yield conn


def _kwargs(settings: Settings, name: str) -> dict[str, object]:
    return {
        "connect_timeout": 10,
        "options": f"-c statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT_MS}",
        "application_name": application_name(name),
    }


def application_name(pool_name: str) -> str:
    """What the backends of the pool named ``pool_name`` show in ``pg_stat_activity``."""
    return f"rag-system/{pool_name}"


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


def _sizing(settings: Settings, name: str, *, autocommit: bool = False) -> dict[str, Any]:
    """``max_size`` = pool size + overflow, timeout, recycling."""
    return {
        "max_size": settings.DATABASE_POOL_SIZE + settings.DATABASE_POOL_MAX_OVERFLOW,
        "timeout": settings.DATABASE_POOL_TIMEOUT,
        "max_lifetime": settings.DATABASE_POOL_RECYCLE,
        "reconnect_timeout": RECONNECT_TIMEOUT_S,
        "kwargs": {**_kwargs(settings, name), "autocommit": autocommit},
    }


def create_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    name: str = "rag",
    autocommit: bool = False,
    wait: bool = False,
) -> ConnectionPool:
    """A blocking pool: Airflow tasks, CLIs, and the gRPC services, which call it from worker
    threads (``asyncio.to_thread``), the one way the API reaches PostgreSQL.

    ``autocommit`` pools suit read paths of single statements (search): no BEGIN and COMMIT
    round trips around each query; a block that needs atomicity opens ``conn.transaction()``.
    With ``wait``, the pool's first ``min_size`` connections must connect within
    ``DATABASE_POOL_TIMEOUT`` (a service's start-up), else :class:`Unavailable`.
    """
    pool = TranslatingPool(
        settings.DATABASE_URL,
        min_size=min_size,
        configure=_configure,
        name=name,
        open=True,
        **_sizing(settings, name, autocommit=autocommit),
    )
    if wait:
        try:
            pool.wait(timeout=settings.DATABASE_POOL_TIMEOUT)
        except PoolTimeout:
            pool.close()
            raise Unavailable(
                f"PostgreSQL did not answer within {settings.DATABASE_POOL_TIMEOUT:g} s (DATABASE_URL)"
            ) from None
    return pool
