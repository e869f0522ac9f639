from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import argon2
import pytest

from rag.adapters.passwords import Argon2Passwords
from rag.core.errors import Overloaded

# Cheap parameters keep the tests fast; production uses argon2-cffi's RFC 9106 defaults.
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def passwords() -> Argon2Passwords:
    return Argon2Passwords(CHEAP)


def test_hash_is_argon2id_salted_and_verifies(passwords: Argon2Passwords) -> None:
    first = asyncio.run(passwords.hash("correct horse"))
    second = asyncio.run(passwords.hash("correct horse"))
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert asyncio.run(passwords.verify(first, "correct horse"))
    assert asyncio.run(passwords.verify(second, "correct horse"))


def test_wrong_password_does_not_verify(passwords: Argon2Passwords) -> None:
    stored = asyncio.run(passwords.hash("correct horse"))
    assert not asyncio.run(passwords.verify(stored, "Correct horse"))
    assert not asyncio.run(passwords.verify(stored, ""))


def test_unknown_user_never_verifies(passwords: Argon2Passwords) -> None:
    assert not asyncio.run(passwords.verify(None, "anything"))
    assert not passwords.verify_blocking(None, "")


def test_corrupt_stored_hash_fails_closed(passwords: Argon2Passwords) -> None:
    assert not asyncio.run(passwords.verify("not-a-hash", "x"))
    assert not passwords.needs_rehash("not-a-hash")


def test_weaker_hashes_need_rehash() -> None:
    weak = Argon2Passwords(CHEAP)
    strong = Argon2Passwords()
    weak_hash = asyncio.run(weak.hash("pw-123456"))
    assert strong.needs_rehash(weak_hash)
    assert not weak.needs_rehash(weak_hash)
    assert asyncio.run(strong.verify(weak_hash, "pw-123456"))  # parameters travel in the hash


class GatedHasher(argon2.PasswordHasher):
    """Hashes only once the test opens the gate, so the test controls how many are running."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self.gate.set()  # open while the constructor hashes its dummy password
        self.started = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.started.set()
        self.gate.wait(10)
        return super().verify(hash, password)


def test_hashing_does_not_wait_for_the_default_executor() -> None:
    # Search runs its blocking calls in the loop's default executor; a saturated one must not
    # hold up a login (nor a login burst hold up search).
    passwords = Argon2Passwords(CHEAP)
    stored = CHEAP.hash("correct horse")
    release = threading.Event()

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        busy = loop.run_in_executor(None, release.wait, 10)
        try:
            return await asyncio.wait_for(passwords.verify(stored, "correct horse"), 5)
        finally:
            release.set()
            await busy

    assert asyncio.run(main())
    passwords.close()


def test_beyond_threads_and_queue_logins_are_refused_at_once() -> None:
    hasher = GatedHasher()
    passwords = Argon2Passwords(hasher, threads=1, max_waiting=1)
    stored = CHEAP.hash("correct horse")
    hasher.gate.clear()

    async def main() -> list[object]:
        running = asyncio.ensure_future(passwords.verify(stored, "correct horse"))
        waiting = asyncio.ensure_future(passwords.verify(stored, "correct horse"))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match=r"too many password checks in progress; retry in 1 s"):
            await passwords.verify(stored, "correct horse")
        hasher.gate.set()
        done: list[object] = list(await asyncio.gather(running, waiting))
        # Both slots are free again.
        done.append(await passwords.verify(stored, "correct horse"))
        return done

    assert asyncio.run(main()) == [True, True, True]
    passwords.close()


def test_a_cancelled_check_holds_its_slot_until_its_thread_is_done() -> None:
    hasher = GatedHasher()
    passwords = Argon2Passwords(hasher, threads=1, max_waiting=0)
    stored = CHEAP.hash("correct horse")
    hasher.gate.clear()

    async def main() -> bool:
        running = asyncio.ensure_future(passwords.verify(stored, "correct horse"))
        await asyncio.to_thread(hasher.started.wait, 10)  # the thread has taken it
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running  # the caller has given up; the thread still hashes
        with pytest.raises(Overloaded):
            await passwords.verify(stored, "correct horse")
        hasher.gate.set()
        for _ in range(200):  # the slot frees when the thread finishes; no timing assert
            try:
                return await passwords.verify(stored, "correct horse")
            except Overloaded:
                await asyncio.sleep(0.01)
        return False

    assert asyncio.run(main())
    passwords.close()
