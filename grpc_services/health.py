"""``grpc.health.v1`` driven by a readiness check: NOT_SERVING until the dependencies are ready.

The check (PostgreSQL, object storage, the Triton models a service needs) is polled; the
overall status ("") and every registered service follow it, so a dependency that goes away
turns the server NOT_SERVING again. On shutdown the statuses go NOT_SERVING for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[bool]]
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def always_ready() -> bool:
    return True


def all_ready(*checks: Readiness) -> Readiness:
    """A readiness check that passes when every one of ``checks`` does."""

    async def check() -> bool:
        results = await asyncio.gather(*(c() for c in checks))
        return all(results)

    return check


class HealthMonitor:
    def __init__(
        self,
        services: Sequence[str],
        readiness: Readiness,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.servicer = health_aio.HealthServicer()
        self._services = ("", *services)
        self._readiness = readiness
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    async def start(self) -> None:
        await self._publish(False)
        self._task = asyncio.create_task(self._poll(), name="rag-health-monitor")

    async def shutdown(self) -> None:
        """NOT_SERVING for every service, for good (the server is stopping)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.ready = False
        if self._on_change is not None:
            self._on_change(False)
        await self.servicer.enter_graceful_shutdown()

    async def check_once(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._readiness(), self._timeout_s))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("readiness check failed: %s", exc or type(exc).__name__)
            return False

    async def _poll(self) -> None:
        while True:
            ready = await self.check_once()
            if ready != self.ready:
                log.info(
                    "dependencies %s: health %s",
                    "ready" if ready else "not ready",
                    "SERVING" if ready else "NOT_SERVING",
                )
                await self._publish(ready)
            await asyncio.sleep(self._interval_s)

    async def _publish(self, ready: bool) -> None:
        self.ready = ready
        status = _SERVING if ready else _NOT_SERVING
        for service in self._services:
            await self.servicer.set(service, status)
        if self._on_change is not None:
            self._on_change(ready)
