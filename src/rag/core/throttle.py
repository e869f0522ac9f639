"""Token buckets and concurrency slots, and the login throttle built from the buckets (SPEC §4).

Both refuse with :class:`Overloaded` carrying ``retry_after_s``: the gRPC edge turns it into
RESOURCE_EXHAUSTED with a retry hint, the one mechanism for every "come back later".

A login attempt needs a token from two buckets: one per username, so that guesses at one
account from many addresses are slowed, and one per client address, so that one client
cannot try many accounts. Every attempt takes from both; a successful login gives the
username's token back, so only failures wear down an account's bucket while the address
pays for every password hash it makes the server compute. Unknown and existing usernames are
throttled alike, with one message, so the answer does not tell which exist.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

from rag.core.errors import Overloaded


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
        tokens = self._level(key, now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._max_keys:
                self._forget_idle(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def wait_for(self, key: str) -> float:
        """The seconds until ``key`` has a token (0.0: it has one now); takes nothing."""
        return max(0.0, (1.0 - self._level(key, self._clock())) / self.rate)

    def refund(self, key: str) -> None:
        """Give back a token taken from ``key`` (never above ``burst``)."""
        now = self._clock()
        self._buckets[key] = (min(float(self.burst), self._level(key, now) + 1.0), now)

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled completely is the same as a new one.
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        overflow = len(self._buckets) - self._max_keys
        if overflow > 0:  # still too many busy callers: forget the least recently seen
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[:overflow]:
                del self._buckets[key]


class LoginThrottle:
    """Login attempts per username and per client address; both must allow an attempt."""

    def __init__(
        self,
        *,
        username_per_minute: float,
        username_burst: int,
        address_per_minute: float,
        address_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._usernames = TokenBuckets(username_per_minute / 60, username_burst, clock=clock)
        self._addresses = TokenBuckets(address_per_minute / 60, address_burst, clock=clock)

    def admit(self, username: str, client: str | None) -> None:
        """Count an attempt; :class:`Overloaded` with the seconds to wait when either bucket is empty.

        A refused attempt takes nothing from either bucket. ``client`` ``None`` (address not
        known) counts against the username only.
        """
        wait = self._usernames.wait_for(username)
        if client is not None:
            wait = max(wait, self._addresses.wait_for(client))
        if wait > 0.0:
            # One message whichever bucket is empty, and whether or not the account exists.
            raise Overloaded(
                f"too many login attempts; retry in {math.ceil(wait)} s", retry_after_s=math.ceil(wait)
            )
        self._usernames.try_acquire(username)
        if client is not None:
            self._addresses.try_acquire(client)

    def succeeded(self, username: str) -> None:
        """A correct password: the attempt does not count against the account."""
        self._usernames.refund(username)


class Slots:
    """At most ``limit`` holders at once; one more is refused with :class:`Overloaded` at once.

    No queue: a caller that waited would hold its connection (and, for an upload, its bytes)
    while the work it waits behind gets no faster. The message names ``what`` is busy and the
    ``setting`` that bounds it, and says when to retry. Thread-safe, and non-blocking, so it
    can be taken on an event loop.
    """

    def __init__(self, limit: int, *, what: str, setting: str, retry_after_s: float = 1.0) -> None:
        if limit < 1:
            raise ValueError(f"{setting} must be >= 1")
        self.limit = limit
        self.what = what
        self.setting = setting
        self.retry_after_s = retry_after_s
        self.in_use = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block; :class:`Overloaded` when all are taken."""
        with self._lock:
            if self.in_use >= self.limit:
                raise Overloaded(
                    f"{self.limit} {self.what} are already in progress on this server "
                    f"({self.setting}); retry in {self.retry_after_s:g} s",
                    retry_after_s=self.retry_after_s,
                )
            self.in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= 1
