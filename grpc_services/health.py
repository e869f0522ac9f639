"""``grpc.health.v1`` driven by readiness checks: NOT_SERVING until the dependencies are ready.

The checks are named dependencies (PostgreSQL, object storage, each Triton model), polled
together. Each gRPC service is SERVING when the dependencies it needs are ready (a search does
not need the generator); the overall status ("", what Kubernetes probes) needs all of them. A
dependency that goes away turns the services that need it NOT_SERVING again. On shutdown every
status goes NOT_SERVING for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[bool]]
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def always_ready() -> bool:
    return True


@dataclass(frozen=True)
class Dependencies:
    """Named readiness checks, and which of them each gRPC service needs (by full name;
    a service not listed needs all of them)."""

    checks: Mapping[str, Readiness]
    needs: Mapping[str, Collection[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {n for names in self.needs.values() for n in names} - set(self.checks)
        if unknown:
            raise ValueError(f"services need unknown dependencies: {sorted(unknown)}")

    @classmethod
    def of(cls, readiness: Readiness | Dependencies) -> Dependencies:
        return readiness if isinstance(readiness, Dependencies) else cls({"dependencies": readiness})

    def needed_by(self, service: str) -> Collection[str]:
        return self.needs.get(service, tuple(self.checks))


class HealthMonitor:
    def __init__(
        self,
        services: Sequence[str],
        readiness: Readiness | Dependencies,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.servicer = health_aio.HealthServicer()
        self._services = tuple(services)
        self._dependencies = Dependencies.of(readiness)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._states: dict[str, bool] | None = None  # dependency -> ready, after the first poll
        self.ready = False

    async def start(self) -> None:
        await self._publish({name: False for name in self._dependencies.checks})
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
        """Poll every dependency once and publish; whether all of them are ready."""
        states = await self._check_all()
        if states != self._states:
            await self._publish(states)
        return all(states.values())

    async def _check_all(self) -> dict[str, bool]:
        names = list(self._dependencies.checks)
        results = await asyncio.gather(*(self._check(self._dependencies.checks[n], n) for n in names))
        return dict(zip(names, results, strict=True))

    async def _check(self, check: Readiness, name: str) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), self._timeout_s))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, exc or type(exc).__name__)
            return False

    async def _poll(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval_s)

    async def _publish(self, states: dict[str, bool]) -> None:
        if self._states is not None:
            for name, ready in states.items():
                if ready != self._states.get(name):
                    log.info("dependency %s %s", name, "ready" if ready else "not ready")
        self._states = states
        ready = all(states.values())
        if ready != self.ready:
            log.info(
                "dependencies %s: health %s",
                "ready" if ready else "not ready",
                "SERVING" if ready else "NOT_SERVING",
            )
        self.ready = ready
        await self.servicer.set("", _SERVING if ready else _NOT_SERVING)
        for service in self._services:
            needed = all(states[n] for n in self._dependencies.needed_by(service))
            await self.servicer.set(service, _SERVING if needed else _NOT_SERVING)
        if self._on_change is not None:
            self._on_change(ready)
