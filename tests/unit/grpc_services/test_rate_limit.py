from __future__ import annotations

import pytest

from grpc_services.interceptors.rate_limit import TokenBuckets, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10, burst=3, clock=clock)
    assert [buckets.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.try_acquire("a")
    assert wait == pytest.approx(0.1)
    clock.now += 0.1
    assert buckets.try_acquire("a") == 0.0
    assert buckets.try_acquire("a") > 0


def test_callers_have_separate_buckets() -> None:
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())
    assert buckets.try_acquire("a") == 0.0
    assert buckets.try_acquire("a") > 0
    assert buckets.try_acquire("b") == 0.0


def test_refill_is_capped_at_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=100, burst=2, clock=clock)
    buckets.try_acquire("a")
    clock.now += 3600
    assert [buckets.try_acquire("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_idle_buckets_are_forgotten_beyond_max_keys() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock, max_keys=10)
    for i in range(10):
        buckets.try_acquire(f"old{i}")
    clock.now += 5  # the old buckets are full again
    buckets.try_acquire("new")
    assert set(buckets._buckets) == {"new"}
    for i in range(30):  # busy callers: the least recently seen go
        buckets.try_acquire(f"busy{i}")
    assert len(buckets._buckets) <= 10


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBuckets(rate=1, burst=0)


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:5555", "127.0.0.1"),
        ("ipv6:[::1]:5555", "::1"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
        ("", ""),
    ],
)
def test_client_address_drops_the_port(peer: str, address: str) -> None:
    assert client_address(peer) == address


def test_wait_for_takes_nothing_and_refund_gives_back() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, clock=clock)
    assert buckets.wait_for("a") == 0.0
    assert [buckets.try_acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.wait_for("a") == pytest.approx(1.0)
    assert buckets.wait_for("a") == pytest.approx(1.0)  # asking took nothing
    buckets.refund("a")
    assert buckets.wait_for("a") == 0.0
    buckets.refund("a")
    buckets.refund("a")  # never above the burst
    assert [buckets.try_acquire("a") == 0.0 for _ in range(3)] == [True, True, False]
