"""Parse untrusted documents in worker processes, under memory, CPU, wall-time and output limits.

A :class:`ParserPool` keeps worker processes (started by a fork server that has already imported
the parsers, so a replacement is ready in milliseconds) and sends each document to one of them.
A worker runs :func:`~rag.parsing.extraction.extract` under ``RLIMIT_AS`` (memory) and a
``RLIMIT_CPU`` budget renewed per document; the parent kills a worker that runs past the wall-time
limit. A document past a limit raises :class:`UnprocessableDocument` whose message names the limit
and its setting; the worker it killed is replaced and the next document goes on.

The pool is pebble's ``ProcessPool``: it kills a timed-out worker and replaces a dead one,
failing only the task it was running. ``concurrent.futures.ProcessPoolExecutor`` breaks the
whole pool when one worker dies and has no per-task timeout; ``multiprocessing.Pool`` waits
forever for the task of a dead worker.

Workers name themselves in their process title: ``rag-parser: idle`` or ``rag-parser: <label>``
(the pipeline passes the document id), so their memory can be watched per document.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import resource
import signal
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pebble import ProcessExpired, ProcessPool

from rag.core.chunking import ChunkingOptions
from rag.core.errors import Unavailable, UnprocessableDocument
from rag.parsing.extraction import Extracted, extract
from rag.parsing.limits import ParseLimits

if TYPE_CHECKING:
    from rag.models.tokens import TokenCounter

log = logging.getLogger(__name__)

TITLE = "rag-parser"
# A worker is replaced after this many documents, so no heap fragmentation builds up.
TASKS_PER_WORKER = 100
# What the fork server imports once, so every worker starts with the parsers loaded.
_PRELOAD = [
    "rag.parsing.worker_bootstrap",  # first: workers never re-run the parent's main script
    "rag.parsing.pdf",
    "rag.parsing.docx",
    "rag.parsing.html",
    "rag.parsing.markdown",
    "rag.parsing.text",
    "rag.models.tokens",
    "charset_normalizer",
    __name__,
]
# How long past the wall-time limit the parent waits for the pool to report a result at all,
# and how often it checks that the pool still runs.
_GRACE_S = 30.0
_POLL_S = 0.5


class _PoolBroken(Exception):
    """The pool cannot run tasks any more (its cause says why); a new one can."""


@dataclass(frozen=True)
class _Report:
    """A worker's answer: the extraction, or the reason it refused the document."""

    extracted: Extracted | None
    reason: str | None = None
    out_of_memory: bool = False


class ParserPool:
    """Parses each document in a worker process of a pool reused across documents.

    ``limits`` bounds every document (``PARSE_*`` settings); ``tokenizer`` is the model folder
    whose tokenizer sizes chunks (default: the packaged embedder's). Close the pool when done.
    """

    def __init__(
        self,
        limits: ParseLimits | None = None,
        *,
        tokenizer: str | Path | None = None,
        tasks_per_worker: int = TASKS_PER_WORKER,
        name: str = "",
    ) -> None:
        if tokenizer is None:
            from rag.models.artifacts import default_embedder_path

            tokenizer = default_embedder_path()
        self.limits = limits or ParseLimits()
        self._tokenizer = str(tokenizer)
        self._tasks_per_worker = tasks_per_worker
        self._title = f"{TITLE}[{name}]" if name else TITLE  # tells pools of one process apart
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")  # workers never inherit our threads
        context.set_forkserver_preload(_PRELOAD)
        return ProcessPool(
            max_workers=1,  # the pipeline parses one document at a time
            max_tasks=self._tasks_per_worker,
            initializer=_start_worker,
            initargs=(self.limits, self._title),
            context=context,
        )

    def extract(self, data: bytes, *, filename: str, chunking: ChunkingOptions, label: str = "") -> Extracted:
        """The document's title and chunks, or UnprocessableDocument naming the limit it broke.

        Raises :class:`Unavailable` when no worker can be started at all.
        """
        args = (data, filename, chunking, self._tokenizer, label)
        for attempt in (1, 2):
            try:
                outcome = self._run(args)
            except _PoolBroken as exc:
                # A worker died while idle (the pool gives up on all its tasks then), or the
                # pool cannot start workers: a new pool, and one more try for this document.
                log.warning("parser pool broken (%s); starting a new one", exc.__cause__)
                self._replace_pool()
                if attempt == 2:
                    raise Unavailable(f"parser workers cannot run: {exc.__cause__}") from None
                continue
            if outcome.out_of_memory:
                # Libraries that failed an allocation may be left in any state, and the heap
                # fragmented: a fresh worker takes the next document.
                self._replace_pool()
            if outcome.extracted is None:
                raise UnprocessableDocument(outcome.reason or "the parser refused the document")
            return outcome.extracted
        raise AssertionError("unreachable")

    def _run(self, args: tuple[object, ...]) -> _Report:
        limits = self.limits
        with self._lock:
            try:
                future = self._pool.schedule(_work, args=args, timeout=limits.timeout_s)
            except RuntimeError as exc:  # the pool stopped: a worker died while idle
                raise _PoolBroken from exc
        began = time.monotonic()
        while True:
            try:
                return future.result(timeout=_POLL_S)
            except BrokenProcessPool as exc:
                raise _PoolBroken from exc
            except ProcessExpired as exc:
                raise UnprocessableDocument(_death_reason(exc.exitcode, limits)) from None
            except FutureTimeout:
                if future.done():  # the pool killed the worker at the time limit
                    break
                if not self._pool.active:  # it broke (a worker died idle) with this task queued
                    raise _PoolBroken from RuntimeError("the parser pool stopped")
                if time.monotonic() - began > limits.timeout_s + _GRACE_S:
                    future.cancel()  # type: ignore[no-untyped-call]
                    self._replace_pool()  # it never reported: start afresh
                    break
        raise UnprocessableDocument(
            f"parser exceeded its time limit of {limits.timeout_s:g} s (PARSE_TIMEOUT_S)"
        )

    def _replace_pool(self) -> None:
        with self._lock:
            old, self._pool = self._pool, self._new_pool()
        old.stop()  # type: ignore[no-untyped-call]
        old.join(timeout=10)

    def close(self) -> None:
        """Stop the workers (nothing is in flight between documents)."""
        with self._lock:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=10)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def memory_reason(limits: ParseLimits) -> str:
    return f"parser exceeded its memory limit of {limits.max_memory_mb} MiB (PARSE_MAX_MEMORY_MB)"


def _death_reason(exitcode: int | None, limits: ParseLimits) -> str:
    if exitcode == -signal.SIGXCPU:
        return f"parser exceeded its CPU limit of {limits.max_cpu_s} s (PARSE_MAX_CPU_S)"
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        what = f"was killed by {name}" if exitcode == -signal.SIGKILL else f"crashed ({name})"
        return (
            f"parser worker {what} while parsing this document (out of memory? its limit is "
            f"{limits.max_memory_mb} MiB, PARSE_MAX_MEMORY_MB)"
        )
    return f"parser worker exited with status {exitcode} while parsing this document"


# -- in the worker process -------------------------------------------------------------------
_limits = ParseLimits()
_title = TITLE
_counters: dict[str, TokenCounter] = {}


def _start_worker(limits: ParseLimits, title: str) -> None:
    global _limits, _title
    _limits, _title = limits, title
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = limits.max_memory_mb * 2**20
    soft = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU dumps core by default
    _set_title("idle")


def _work(data: bytes, filename: str, chunking: ChunkingOptions, tokenizer: str, label: str) -> _Report:
    limits = _limits
    _set_title(label or "parsing")
    _limit_cpu(limits.max_cpu_s)
    _reset_peak_rss()
    try:
        counter = _counters.get(tokenizer)
        if counter is None:
            from rag.models.tokens import TokenCounter

            counter = _counters[tokenizer] = TokenCounter(tokenizer)
        extracted = extract(
            data, filename=filename, chunking=chunking, count_tokens=counter.count, limits=limits
        )
        return _Report(replace(extracted, peak_rss_bytes=_peak_rss()))
    except Exception as exc:
        out_of_memory = _out_of_memory(exc)
        reason = memory_reason(limits) if out_of_memory else _rejection(exc)
        if reason is None:
            raise  # a bug: the caller reports it with its traceback
    finally:
        _limit_cpu(None)
        _set_title("idle")
    # Out of the handler, the parser's frames (and what they held) are gone.
    gc.collect()
    assert reason is not None
    return _Report(None, reason, out_of_memory)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether an allocation failed (past RLIMIT_AS) on the way to ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, MemoryError):
            return True
        # libxml2 (lxml: python-docx, the HTML parser) reports a failed allocation as a parse error.
        entries = getattr(cause, "error_log", None) or ()
        if any(getattr(entry, "type_name", "") == "ERR_NO_MEMORY" for entry in entries):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _rejection(exc: BaseException) -> str | None:
    """The quarantine reason for an exception out of a parser; None for a bug."""
    if isinstance(exc, UnprocessableDocument):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "document is nested too deeply to parse"
    return None


def _limit_cpu(seconds: int | None) -> None:
    """Allow ``seconds`` more CPU time from now (SIGXCPU past it), or lift the limit (None)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard
    if seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + seconds
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM, the peak resident set size
    except OSError:
        pass


def _peak_rss() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _set_title(state: str) -> None:
    from setproctitle import setproctitle

    setproctitle(f"{_title}: {state}")
