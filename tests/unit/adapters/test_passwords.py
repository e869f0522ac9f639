from __future__ import annotations

import asyncio

import argon2
import pytest

from rag.adapters.passwords import Argon2Passwords

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
