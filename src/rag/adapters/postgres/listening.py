"""The LISTEN connection of the in-memory mirrors (:mod:`.search_versions`, :mod:`.token_versions`).

Each mirror keeps one such connection and re-opens it after any loss (a restart of PostgreSQL, a
terminated backend, a restore swap), waiting :class:`Reconnects` between attempts; meanwhile it
reads the database, so a lost connection costs speed, never correctness. TCP keepalives notice
a peer that vanished without closing the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from typing import Any, TypedDict

import psycopg

log = logging.getLogger(__name__)


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


class ListenOptions(TypedDict, total=False):
    """How a :class:`Listener` connects: the DSN (``None``: never listen, always read the
    database), the connection's application name, and the reconnect back-off's bounds."""

    conninfo: str | None
    application_name: str
    reconnect_s: float
    reconnect_max_s: float


class Listener(ABC):
    """The background task of a mirror: :meth:`_listen` keeps the LISTEN connection on
    ``channel`` (re-opening it after :class:`Reconnects` delays) and hands it to :meth:`_follow`;
    ``listening`` says whether memory can be trusted now. ``changes`` names what the channel
    carries, for the logs."""

    task_name = "listener"
    channel = ""
    changes = ""
    default_application_name = "rag-listener"

    def __init__(
        self,
        *,
        conninfo: str | None = None,
        application_name: str | None = None,
        reconnect_s: float = 1.0,
        reconnect_max_s: float = 15.0,
    ) -> None:
        self._conninfo = conninfo
        self._application_name = application_name or self.default_application_name
        self._reconnects = Reconnects(reconnect_s, reconnect_max_s)
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._listening_event = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._listening

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening (in the background); wait up to ``wait_s`` until it first listens."""
        if self._conninfo is None or self._task is not None:
            return
        self._task = asyncio.create_task(self._listen(), name=self.task_name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening_event.wait(), wait_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._stopped()

    async def _listen(self) -> None:
        """Listen until cancelled, re-opening the connection after any loss; while it is lost,
        memory is not trusted."""
        assert self._conninfo is not None
        while True:
            try:
                async with await listen(
                    self._conninfo, self.channel, application_name=self._application_name
                ) as conn:
                    await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any connection trouble: stop trusting memory, retry
                if self._listening:
                    log.warning("%s: LISTEN connection lost, reading the database: %s", self.changes, exc)
            self._stopped()
            self._listening_event.clear()
            await asyncio.sleep(self._reconnects.next_delay())

    def _trusted(self) -> None:
        """Memory mirrors the database from now on (called by :meth:`_follow`)."""
        self._listening = True
        self._listening_event.set()
        self._reconnects.reset()
        log.info("listening for %s on %s", self.changes, self.channel)

    @abstractmethod
    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Bring memory up to date, call :meth:`_trusted`, then apply each notification on
        ``conn`` until the connection fails."""

    @abstractmethod
    def _stopped(self) -> None:
        """Stop trusting memory (the connection is lost or the listener closed)."""
