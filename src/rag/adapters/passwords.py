"""Password hashing with argon2-cffi (Argon2id, RFC 9106 parameters).

Hashing is deliberately slow (tens of milliseconds), so it runs in a worker thread and never
blocks the event loop. Verifying against no hash at all (unknown user) costs the same as a
real check, so response times do not reveal which usernames exist.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)


class Argon2Passwords:
    """Implements :class:`rag.core.authentication.PasswordHasher`."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        # argon2-cffi's defaults are RFC 9106's low-memory profile (64 MiB, t=3, p=4).
        self._hasher = hasher or argon2.PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify_blocking, password_hash, password)

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
