"""The LISTEN connections: reconnect delays (jittered, doubling, capped, reset on success) and
the loop that re-opens a lost connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rag.adapters.postgres import listening
from rag.adapters.postgres.listening import Listener, Reconnects


def test_delays_double_up_to_the_cap_with_jitter_and_start_over_after_a_success() -> None:
    reconnects = Reconnects(first_s=1.0, max_s=8.0)
    bounds = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for bound in bounds:
        assert bound / 2 <= reconnects.next_delay() <= bound
    reconnects.reset()
    assert 0.5 <= reconnects.next_delay() <= 1.0


class _Connection:
    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Mirror(Listener):
    """Follows a connection that is lost once, then one that stays up."""

    channel = "rag_test_changes"
    changes = "test changes"

    def __init__(self) -> None:
        super().__init__(
            conninfo="postgresql://test", application_name="test", reconnect_s=0.001, reconnect_max_s=0.001
        )
        self.events: list[str] = []
        self.second = asyncio.Event()

    async def _follow(self, conn: Any) -> None:
        self._trusted()
        self.events.append(f"follow listening={self.listening}")
        if len(self.events) == 1:
            raise ConnectionError("terminated by the administrator")
        self.second.set()
        await asyncio.Event().wait()

    def _stopped(self) -> None:
        self._listening = False
        self.events.append("stopped")


def test_a_lost_connection_stops_trusting_memory_and_listens_again(monkeypatch: pytest.MonkeyPatch) -> None:
    channels: list[str] = []

    async def fake_listen(conninfo: str, channel: str, *, application_name: str) -> _Connection:
        channels.append(channel)
        return _Connection()

    monkeypatch.setattr(listening, "listen", fake_listen)

    async def scenario() -> _Mirror:
        mirror = _Mirror()
        await mirror.start()
        await mirror.second.wait()
        assert mirror.listening
        await mirror.close()
        return mirror

    mirror = asyncio.run(scenario())

    assert channels == ["rag_test_changes", "rag_test_changes"]
    assert mirror.events == ["follow listening=True", "stopped", "follow listening=True", "stopped"]
    assert not mirror.listening
