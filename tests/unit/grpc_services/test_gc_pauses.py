"""Collections are timed by generation, the heap is frozen at start and after a slow full one."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator
from typing import Literal

import pytest
from prometheus_client import CollectorRegistry, Histogram

from grpc_services.gc_pauses import PAUSE_BUCKETS, GcPauses
from grpc_services.loop_lag import LoopLag


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def _pauses() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    histogram = Histogram("pause_seconds", "p", ["generation"], buckets=PAUSE_BUCKETS, registry=registry)
    return registry, histogram


def _count(registry: CollectorRegistry, generation: int) -> float:
    return registry.get_sample_value("pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_start_freezes_the_heap_and_every_collection_is_timed_by_generation() -> None:
    registry, histogram = _pauses()
    pauses = GcPauses(histogram, refreeze_after_s=3600)

    async def go() -> int:
        await pauses.start()
        frozen = gc.get_freeze_count()
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        await pauses.stop()
        gc.collect(2)  # after stop: not timed any more
        return frozen

    frozen = asyncio.run(go())
    assert frozen > 1000  # the interpreter and the test's imports
    assert _count(registry, 0) >= 1
    assert _count(registry, 2) == 2
    assert pauses.refreezes == 0


def test_a_slow_full_collection_freezes_its_survivors_at_most_max_refreezes_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, histogram = _pauses()
    # Every full collection counts as slow, so each one asks for a refreeze.
    pauses = GcPauses(histogram, refreeze_after_s=0.0, max_refreezes=2, check_interval_s=0.01)

    async def go() -> list[int]:
        await pauses.start()
        counts, kept = [], []
        for _ in range(4):
            kept.append([[object()] for _ in range(5000)])  # long-lived objects made after start
            gc.collect(2)
            await asyncio.sleep(0.05)  # the loop-side task freezes
            counts.append(gc.get_freeze_count())
        await pauses.stop()
        return counts

    with caplog.at_level(logging.INFO, logger="grpc_services.gc_pauses"):
        counts = asyncio.run(go())
    assert counts[1] >= counts[0] + 5000  # each refreeze took that round's survivors
    # Then the cap holds: later survivors stay collectable (a few frozen objects may be freed).
    assert counts[3] < counts[1] + 1000
    assert pauses.refreezes == 2
    assert sum("refreeze" in r.getMessage() for r in caplog.records) == 2


def test_a_stall_during_a_collection_is_reported_as_the_collector(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "lag", registry=registry)
    _, histogram = _pauses()
    pauses = GcPauses(histogram, refreeze_after_s=3600)
    watchdog = LoopLag(lag, interval_s=0.05, stall_s=0.2, describe=pauses.describe)

    def slow_finalizer(phase: Literal["start", "stop"], info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            time.sleep(0.6)  # a collection that holds the loop thread

    async def go() -> None:
        await pauses.start()
        await watchdog.start()
        await asyncio.sleep(0.1)
        gc.callbacks.append(slow_finalizer)
        try:
            gc.collect(2)
        finally:
            gc.callbacks.remove(slow_finalizer)
        await asyncio.sleep(0.1)
        await watchdog.stop()
        await pauses.stop()

    with caplog.at_level(logging.WARNING, logger="grpc_services.loop_lag"):
        asyncio.run(go())
    stalls = [r.getMessage() for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert stalls
    assert "garbage collector has run a generation-2 collection" in stalls[0]
    assert pauses.describe() is None  # nothing collecting now
