"""Every account's token version, kept in memory while PostgreSQL tells us about each change;
implements :class:`rag.core.authentication.TokenVersions`.

Every RPC checks its token's version, so the check must not cost a database round trip.
Migration 0008 sends ``<version>:<username>`` on ``rag_token_versions`` whenever a version
rises; one LISTEN connection per process hears it, so a revocation reaches every API process
within milliseconds. After LISTEN the versions that are not 0 are read on the same connection
(the few accounts ever revoked; the rest are 0), and notifications that arrived meanwhile are
applied on top, keeping the larger version. Every ``reload_s`` the versions are read again
(merged, keeping the larger: a version only falls with a restore, which drops the connection). When
the connection drops, memory is no longer trusted: every check reads the database until it
listens again (the listener reconnects with capped backoff, :mod:`.listening`), so a lost
connection costs speed, never a revoked token getting through.
"""

from __future__ import annotations

import logging
from typing import Any, Unpack

import psycopg
from prometheus_client import Counter

from rag.adapters.postgres.listening import Listener, ListenOptions
from rag.adapters.postgres.users import UserRepository

log = logging.getLogger(__name__)

CHANNEL = "rag_token_versions"
_SELECT_RAISED = """
    SELECT username, token_version FROM users WHERE token_version > 0
    UNION ALL
    SELECT username, token_version FROM retired_usernames
"""

LOOKUPS = Counter(
    "rag_auth_token_version_lookups_total",
    "Token version checks by source (memory, database)",
    ["source"],
)


class TokenVersionMap(Listener):
    task_name = "token-versions-listener"
    channel = CHANNEL
    changes = "token version changes"
    default_application_name = "rag-token-versions"

    def __init__(
        self, users: UserRepository, *, reload_s: float = 300.0, **listen: Unpack[ListenOptions]
    ) -> None:
        super().__init__(**listen)
        self._users = users
        self._reload_s = reload_s
        self._versions: dict[str, int] = {}  # username -> version, only those above 0

    def _stopped(self) -> None:
        self._stop_trusting()

    async def current(self, username: str) -> int:
        if self._listening:
            LOOKUPS.labels("memory").inc()
            return self._versions.get(username, 0)
        LOOKUPS.labels("database").inc()
        return await self._users.token_version(username)

    def _stop_trusting(self) -> None:
        self._listening = False
        self._listening_event.clear()
        self._versions = {}

    def _notified(self, payload: str) -> None:
        version, _, username = payload.partition(":")
        try:
            number = int(version)
        except ValueError:
            log.warning("ignoring a malformed %s notification: %r", CHANNEL, payload[:200])
            return
        self._versions[username] = max(number, self._versions.get(username, 0))

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        # Notifications that arrive during the read wait in psycopg's backlog: the loop in
        # _listen applies them next, so a version raised during the read is not lost.
        rows = await (await conn.execute(_SELECT_RAISED)).fetchall()
        for username, version in rows:
            self._versions[str(username)] = max(int(version), self._versions.get(str(username), 0))

    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            await self._load(conn)
            if not self._listening:
                self._trusted()
            async for notify in conn.notifies(timeout=self._reload_s):
                self._notified(notify.payload)
