"""Garbage-collector pauses: measured, named in stall reports, and kept short by freezing.

CPython's cyclic collector runs on whichever thread allocates when a generation fills up, so
in this server it mostly runs on the event-loop thread, and every RPC and health check waits
behind it. A full (generation 2) collection walks every tracked object, and most of them are
the libraries the API imported: about 84,000 objects after start-up (50-100 ms for one full
collection on an idle core here), and several times as many once a model RPC has imported
MLflow. Under load that made the loop stall for 250-320 ms, with the loop's stack inside a
weakref callback of the collector (event-loop stall reports of `python -m bench.adversarial`,
2026-12-03).

Those objects live as long as the process. :func:`gc.freeze` moves every object alive now to a
permanent generation that collections skip (reference counting still frees them), so:

* :meth:`GcPauses.start` freezes the heap once the application is built, before the first call;
* a full collection slower than ``refreeze_after_s`` means a large long-lived heap grew since
  (a lazy import, a warmed cache), and the survivors of that collection are frozen as well, at
  most ``max_refreezes`` times per process. The cap bounds what freezing can cost: a cycle of
  frozen objects that later becomes garbage is never collected.

Every collection's pause is observed in ``rag_gc_pause_seconds{generation}``, and
:meth:`GcPauses.describe` tells the loop-lag watchdog when a stall is a collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger(__name__)

REFREEZE_AFTER_S = 0.05
MAX_REFREEZES = 3
CHECK_INTERVAL_S = 1.0
PAUSE_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcPauses:
    """Times every collection; freezes the long-lived heap at start and after slow full ones."""

    def __init__(
        self,
        pauses: Histogram,
        *,
        refreeze_after_s: float = REFREEZE_AFTER_S,
        max_refreezes: int = MAX_REFREEZES,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self._pauses = pauses
        self._refreeze_after_s = refreeze_after_s
        self._max_refreezes = max_refreezes
        self._check_interval_s = check_interval_s
        self._collecting: tuple[int, float] | None = None  # (generation, perf_counter at start)
        self._refreeze_due = False
        self._task: asyncio.Task[None] | None = None
        self.refreezes = 0

    async def start(self) -> None:
        """Freeze what start-up built, then time collections and refreeze from the loop."""
        freeze("start-up")
        gc.callbacks.append(self._on_collection)
        self._task = asyncio.create_task(self._refreeze_when_due(), name="gc-refreeze")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_collection)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def describe(self) -> str | None:
        """A line for a stall report when a collection is running now, else ``None``."""
        collecting = self._collecting
        if collecting is None:
            return None
        generation, started = collecting
        return (
            f"the garbage collector has run a generation-{generation} collection for "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collector: no allocation-heavy work, no gc calls here.
        if phase == "start":
            self._collecting = (int(info["generation"]), time.perf_counter())
            return
        collecting, self._collecting = self._collecting, None
        if collecting is None:
            return
        generation, started = collecting
        seconds = time.perf_counter() - started
        self._pauses.labels(str(generation)).observe(seconds)
        if generation == 2 and seconds > self._refreeze_after_s and self.refreezes < self._max_refreezes:
            self._refreeze_due = True

    async def _refreeze_when_due(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval_s)
            if self._refreeze_due and self.refreezes < self._max_refreezes:
                self._refreeze_due = False
                self.refreezes += 1
                # Survivors of the slow full collection are long-lived: skip them from now on.
                freeze(f"a slow full collection (refreeze {self.refreezes} of {self._max_refreezes})")


def freeze(reason: str) -> None:
    """Move every object alive now to the permanent generation; log how many are frozen."""
    gc.freeze()
    log.info("froze the heap after %s: %d objects skipped by the collector", reason, gc.get_freeze_count())
