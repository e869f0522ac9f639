"""The loop-lag watchdog names the code that holds the event loop, and the histogram counts it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram

from grpc_services.loop_lag import LAG_BUCKETS, LoopLag


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call inside a coroutine: every other call waits behind it


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("lag_seconds", "lag", buckets=LAG_BUCKETS, registry=registry)


def test_a_blocked_loop_is_reported_once_with_the_blocking_function(caplog: pytest.LogCaptureFixture) -> None:
    registry, lag = _histogram()
    watchdog = LoopLag(lag, interval_s=0.05, stall_s=0.2)

    async def go() -> None:
        await watchdog.start()
        await asyncio.sleep(0.2)  # a few healthy beats
        hold_the_loop(1.0)
        await asyncio.sleep(0.2)
        await watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="grpc_services.loop_lag"):
        asyncio.run(go())
    stalls = [r for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert stalls and watchdog.stalls == len(stalls)  # once per stall (a busy machine may add one)
    assert any("hold_the_loop" in r.getMessage() for r in stalls)
    late = registry.get_sample_value("lag_seconds_bucket", {"le": "0.5"})
    total = registry.get_sample_value("lag_seconds_count")
    assert total is not None and late is not None and total - late >= 1  # one beat > 0.5 s late


def test_a_loop_that_only_awaits_reports_no_stall(caplog: pytest.LogCaptureFixture) -> None:
    _, lag = _histogram()
    watchdog = LoopLag(lag, interval_s=0.05, stall_s=1.0)  # well past what a busy machine adds

    async def go() -> None:
        await watchdog.start()
        for _ in range(10):
            await asyncio.sleep(0.05)
        await watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="grpc_services.loop_lag"):
        asyncio.run(go())
    assert watchdog.stalls == 0
    assert not [r for r in caplog.records if "event loop stalled" in r.getMessage()]
