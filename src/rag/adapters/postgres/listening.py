"""The LISTEN connection of the in-memory mirrors (:mod:`.search_versions`, :mod:`.token_versions`).

Each mirror keeps one such connection and re-opens it after any loss (a restart of PostgreSQL, a
terminated backend, a restore swap), waiting :class:`Reconnects` between attempts; meanwhile it
reads the database, so a lost connection costs speed, never correctness. TCP keepalives notice
a peer that vanished without closing the socket.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg


class Reconnects:
    """Delays between attempts to re-open a lost connection: ``first_s``, doubling up to
    ``max_s``, each drawn between half and all of that (so the processes of a fleet do not
    reconnect in step). :meth:`reset` after a success."""

    def __init__(self, first_s: float = 1.0, max_s: float = 15.0) -> None:
        self._first_s = first_s
        self._max_s = max(first_s, max_s)
        self._next_s = first_s

    def next_delay(self) -> float:
        delay = self._next_s * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)
        self._next_s = min(self._next_s * 2, self._max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._first_s


async def listen(conninfo: str, channel: str, *, application_name: str) -> psycopg.AsyncConnection[Any]:
    """A new autocommit connection LISTENing on ``channel``; the caller closes it."""
    conn = await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        connect_timeout=10,
        application_name=application_name,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    try:
        await conn.execute(f"LISTEN {channel}")
    except BaseException:
        await conn.close()
        raise
    return conn
