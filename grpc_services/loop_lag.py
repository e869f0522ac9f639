"""Event-loop lag: how late the server's event loop runs, and what held it when it stalls.

Every RPC and every health check of this process waits behind whatever runs on its one event
loop, so a blocking call in a coroutine, or a long CPU step, freezes the whole API. A heartbeat
coroutine wakes every :data:`INTERVAL_S` and records how late it woke in
``rag_event_loop_lag_seconds``. A watchdog thread checks the heartbeat: once the loop has not
beaten for :data:`STALL_S` it logs, once per stall, the loop thread's stack (the code holding
the loop, by file, line and function) and what the other busy threads run. A stack that ends
in the selector means the loop was waiting for the CPU or for the interpreter lock (another
thread, or another process on the same cores), not blocked by its own code; when the garbage
collector is running, the report says so first (``describe``, :mod:`grpc_services.gc_pauses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType

from prometheus_client import Histogram

log = logging.getLogger(__name__)

INTERVAL_S = 0.1
STALL_S = 0.25
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_STACK_FRAMES = 12
# Where an idle thread waits: such threads are left out of a stall report.
_IDLE = ("wait", "select", "poll", "acquire", "_worker", "get", "accept", "sleep")


class LoopLag:
    """The heartbeat and its watchdog; ``start`` on the loop to watch, ``stop`` before it ends."""

    def __init__(
        self,
        lag: Histogram,
        *,
        interval_s: float = INTERVAL_S,
        stall_s: float = STALL_S,
        describe: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._lag = lag
        self._describe = describe
        self._interval_s = interval_s
        self._stall_s = stall_s
        self._last_beat = time.monotonic()
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="loop-lag-watchdog", daemon=True)
        self.stalls = 0  # stalls reported so far

    async def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._task = asyncio.create_task(self._beat(), name="loop-lag-heartbeat")
        self._watchdog.start()

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._watchdog.is_alive():
            await asyncio.to_thread(self._watchdog.join, 5)

    async def _beat(self) -> None:
        while True:
            due = time.monotonic() + self._interval_s
            await asyncio.sleep(self._interval_s)
            now = time.monotonic()
            self._last_beat = now
            self._lag.observe(max(0.0, now - due))

    def _watch(self) -> None:
        reported = None  # the beat whose stall was reported already
        while not self._stopped.wait(self._interval_s / 2):
            beat = self._last_beat
            late = time.monotonic() - beat - self._interval_s
            if late < self._stall_s or beat == reported:
                continue
            reported = beat
            self.stalls += 1
            cause = self._describe()
            log.warning(
                "event loop stalled: %.0f ms late so far%s; the loop thread runs:\n%s%s",
                late * 1000,
                f" ({cause})" if cause else "",
                _stack(sys._current_frames().get(self._loop_thread)),
                _busy_threads(self._loop_thread),
            )


def _stack(frame: FrameType | None) -> str:
    if frame is None:
        return "  (no frame)\n"
    return "".join(traceback.format_stack(frame, limit=_STACK_FRAMES))


def _busy_threads(loop_thread: int) -> str:
    """One line per other thread that is not waiting: its name and innermost function."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines = []
    for ident, frame in sys._current_frames().items():
        if ident in (loop_thread, threading.get_ident()) or frame.f_code.co_name.startswith(_IDLE):
            continue
        code, name = frame.f_code, names.get(ident, ident)
        lines.append(f"  thread {name}: {code.co_name} ({code.co_filename}:{frame.f_lineno})")
    return ("other busy threads:\n" + "\n".join(lines)) if lines else "no other thread busy"
