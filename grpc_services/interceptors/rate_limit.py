"""Per-caller rate limit (SPEC §4: 100 requests/s by default): RESOURCE_EXHAUSTED beyond it.

A token bucket per principal (tenant and username); before login (Login, Refresh,
reflection) per client address, which also slows password guessing. Health checks are not
limited: probes must always get an answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from grpc_services.context import current_principal_or_none
from grpc_services.interceptors.base import Call, CallInterceptor
from rag.core.errors import Overloaded

_UNLIMITED_SERVICES = frozenset({"grpc.health.v1.Health"})


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def try_acquire(self, key: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._max_keys:
                self._forget_idle(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled completely is the same as a new one.
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        overflow = len(self._buckets) - self._max_keys
        if overflow > 0:  # still too many busy callers: forget the least recently seen
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[:overflow]:
                del self._buckets[key]


def client_address(peer: str) -> str:
    """The address part of a grpc peer string ("ipv4:127.0.0.1:5555" -> "127.0.0.1")."""
    kind, _, rest = peer.partition(":")
    if kind in {"ipv4", "ipv6"}:
        return rest.rsplit(":", 1)[0]
    return peer


class RateLimitInterceptor(CallInterceptor):
    def __init__(self, buckets: TokenBuckets) -> None:
        self._buckets = buckets

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        if call.service not in _UNLIMITED_SERVICES:
            principal = current_principal_or_none()
            if principal is not None:
                key = f"user:{principal.tenant}/{principal.username}"
            else:
                key = f"addr:{client_address(call.context.peer() or '')}"
            wait = self._buckets.try_acquire(key)
            if wait:
                raise Overloaded(
                    f"rate limit of {self._buckets.rate:g} requests/s exceeded; retry in {wait:.2f} s"
                )
        yield
