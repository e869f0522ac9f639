"""Password hashing with argon2-cffi (Argon2id, RFC 9106 parameters).

Hashing is deliberately slow (tens of milliseconds and 64 MiB each), so it runs on a few
threads of its own: never on the event loop, and never in the loop's default executor, where
a burst of logins would queue ahead of search's work. At most ``threads`` hashes run and
``max_waiting`` wait; beyond that a call is refused with :class:`Overloaded` at once instead of
queueing without bound. Verifying against no hash at all (unknown user) costs the same as a
real check, so response times do not reveal which usernames exist.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rag.core.errors import Overloaded

log = logging.getLogger(__name__)

T = TypeVar("T")


class Argon2Passwords:
    """Implements :class:`rag.core.authentication.PasswordHasher`; :meth:`close` stops its threads."""

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, *, threads: int = 2, max_waiting: int = 32
    ) -> None:
        if threads < 1 or max_waiting < 0:
            raise ValueError("threads must be >= 1 and max_waiting >= 0")
        # argon2-cffi's defaults are RFC 9106's low-memory profile (64 MiB, t=3, p=4).
        self._hasher = hasher or argon2.PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._limit = threads + max_waiting
        self._pending = 0  # submitted and not finished (running or queued)
        self._lock = threading.Lock()

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._run(self.verify_blocking, password_hash, password)

    def verify_blocking(self, password_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            log.warning("a stored password hash is not a valid argon2 hash; the login fails")
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def close(self) -> None:
        """Stop the hashing threads once the queued hashes are done."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self._limit:
                raise Overloaded("too many password checks in progress; retry in 1 s", retry_after_s=1.0)
            self._pending += 1
        try:
            future: Future[T] = self._executor.submit(function, *args)
        except BaseException:
            self._finished(None)
            raise
        # Counted until the thread is done with it, even when the caller stops waiting (a
        # cancelled RPC): a hash that already runs still occupies its thread.
        future.add_done_callback(self._finished)
        return await asyncio.wrap_future(future)

    def _finished(self, _: object) -> None:
        with self._lock:
            self._pending -= 1
