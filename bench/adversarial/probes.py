"""What the stack does while the poison is processed: health, search, and parser-worker memory.

Each probe runs in the background (a thread; the health probe a process), started and stopped
with ``with``:

- :class:`HealthProbe` calls ``grpc.health.v1.Health/Check`` every 100 ms on its own channel and
  keeps each call's latency and answer (a stalled event loop shows as a slow or failed check);
- :class:`SearchLoad` sends hybrid searches, one after another, paced, and keeps their latency;
- :class:`WorkerSampler` reads ``/proc`` every 100 ms for processes whose command line (process
  title) matches a pattern, and keeps their resident set size (VmRSS) and its high-water mark
  (VmHWM, which also covers the moments between two samples).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.latency import case_variant
from rag.client import RagClient

SERVING = "SERVING"
STARTUP_S = 120.0  # for the health probe's process to make its first check
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Loop:
    """A daemon thread calling ``tick`` every ``interval_s`` (at once after a late tick) until stopped."""

    interval_s = 0.1

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            due = max(due + self.interval_s, time.monotonic())
            self._stop.wait(max(0.0, due - time.monotonic()))

    def close(self) -> None:
        """Hook for subclasses: called after the thread has stopped."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.close()


@dataclass(frozen=True)
class Latencies:
    """Milliseconds, nearest rank."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latencies:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0)

        def rank(q: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

        return cls(len(ordered), rank(0.50), rank(0.99), ordered[-1] * 1000)


def _check_health(
    address: str, service: str, interval_s: float, timeout_s: float, stop: Any, ready: Any, results: Any
) -> None:
    """The health probe's loop, in a process of its own (see :class:`HealthProbe`)."""
    seconds: list[float] = []
    at: list[float] = []
    answers: Counter[str] = Counter()
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        due = time.monotonic()
        while not stop.is_set():
            at.append(time.time())
            began = time.perf_counter()
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
                answer = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                answer = f"failed: {cast(grpc.Call, exc).code().name}"
            seconds.append(time.perf_counter() - began)
            answers[answer] += 1
            ready.set()  # the first check is in: the probe runs
            due = max(due + interval_s, time.monotonic())
            stop.wait(max(0.0, due - time.monotonic()))
    results.send((seconds, at, dict(answers)))


class HealthProbe:
    """``Health/Check`` of ``service`` ("" is the whole server) every ``interval_s``.

    It runs in a process of its own: in this one the fuzz generates requests and the other
    probes run, and their hold on the interpreter lock would show as health latency that the
    server never had.
    """

    def __init__(
        self, address: str, *, service: str = "", interval_s: float = 0.1, timeout_s: float = 30.0
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._ready = context.Event()
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_check_health,
            args=(address, service, interval_s, timeout_s, self._stop, self._ready, sender),
            name="health-probe",
            daemon=True,
        )
        self.seconds: list[float] = []
        self.at: list[float] = []  # when each check was sent (epoch seconds)
        self.answers: Counter[str] = Counter()  # SERVING, NOT_SERVING, or "failed: <code>"

    def __enter__(self) -> Self:
        """Start the probe and return once its first check is in (a new process takes seconds
        to import grpc on a busy machine: what it would miss meanwhile is not measured)."""
        self._process.start()
        if not self._ready.wait(STARTUP_S):
            self._stop.set()
            self._process.join(timeout=5)
            raise RuntimeError(f"the health probe did not make its first check within {STARTUP_S:.0f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._results.poll(120):
            seconds, at, answers = self._results.recv()
            self.seconds, self.at, self.answers = list(seconds), list(at), Counter(answers)
        self._process.join(timeout=30)

    @property
    def latency(self) -> Latencies:
        return Latencies.of(self.seconds)

    @property
    def always_serving(self) -> bool:
        return set(self.answers) == {SERVING}

    def slowest(self, marks: Sequence[tuple[float, str]], n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` slowest checks, each with the phase it fell in: the last of ``marks``
        (epoch seconds, label: what the run started then) before it was sent."""
        ordered = sorted(marks)
        rows = []
        for seconds, at in sorted(zip(self.seconds, self.at, strict=True), reverse=True)[:n]:
            during = [label for began, label in ordered if began <= at]
            rows.append({"ms": seconds * 1000, "at": at, "during": during[-1] if during else "start"})
        return rows


class SearchLoad(_Loop):
    """Hybrid top-5 searches by ``client``, at most one per ``interval_s``; new letter case each time,
    so the result cache does not answer them."""

    def __init__(
        self,
        client: RagClient,
        queries: Sequence[str],
        *,
        interval_s: float = 0.1,
        renew: Callable[[], RagClient] | None = None,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._client = client
        self._renew = renew  # a client with a fresh token, once the access token has expired
        self._queries = list(queries)
        self._rng = random.Random(7)
        self.seconds: list[float] = []
        self.errors: Counter[str] = Counter()

    def tick(self) -> None:
        query = case_variant(self._rng.choice(self._queries), self._rng)
        began = time.perf_counter()
        try:
            self._client.search(query, top_k=5, mode="hybrid")
        except grpc.RpcError as exc:
            code = cast(grpc.Call, exc).code()
            self.errors[code.name] += 1
            if code == grpc.StatusCode.UNAUTHENTICATED and self._renew is not None:
                self._client.close()
                self._client = self._renew()
            return
        self.seconds.append(time.perf_counter() - began)

    @property
    def latency(self) -> Latencies:
        return Latencies.of(self.seconds)


@dataclass(frozen=True)
class WorkerSample:
    at: float  # time.monotonic()
    pid: int
    rss: int  # bytes
    hwm: int  # bytes: the process's peak RSS so far
    documents: frozenset[str]  # document ids its command line names


@dataclass
class _Seen:
    matches: bool
    checked: float


class WorkerSampler(_Loop):
    """RSS of the processes whose ``/proc/<pid>/cmdline`` matches ``pattern``, every ``interval_s``.

    Command lines change (a worker sets its title after it starts, and may name the document it
    parses), so a process that did not match is looked at again after ``recheck_s``.
    """

    def __init__(
        self, pattern: str, *, interval_s: float = 0.1, recheck_s: float = 0.5, proc: Path = Path("/proc")
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._pattern = re.compile(pattern)
        self._recheck_s = recheck_s
        self._proc = proc
        self._seen: dict[int, _Seen] = {}
        self.samples: list[WorkerSample] = []

    def tick(self) -> None:
        now = time.monotonic()
        alive = set()
        for entry in os.scandir(self._proc):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            alive.add(pid)
            seen = self._seen.get(pid)
            if seen is None or (not seen.matches and now - seen.checked >= self._recheck_s):
                seen = self._seen[pid] = _Seen(self._matches(pid), now)
            if seen.matches:
                self._sample(pid, now)
        for pid in set(self._seen) - alive:
            del self._seen[pid]

    def _cmdline(self, pid: int) -> str:
        try:
            raw = (self._proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            return ""
        return raw.replace(b"\x00", b" ").decode("utf-8", "replace").strip()

    def _matches(self, pid: int) -> bool:
        return pid != os.getpid() and bool(self._pattern.search(self._cmdline(pid)))

    def _sample(self, pid: int, now: float) -> None:
        try:
            status = (self._proc / str(pid) / "status").read_text()
        except OSError:
            return
        fields: dict[str, int] = {}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                fields[key] = int(value.split()[0]) * 1024
        if "VmRSS" not in fields:  # a zombie
            return
        documents = frozenset(UUID.findall(self._cmdline(pid)))
        self.samples.append(WorkerSample(now, pid, fields["VmRSS"], fields.get("VmHWM", 0), documents))


@dataclass
class Window:
    """When one document was being processed: from its upload to when it was seen terminal."""

    document_id: str
    start: float
    end: float | None = None  # None: still open


@dataclass
class PeakRss:
    """The peak RSS of parser workers while a document was processed, and how it was attributed."""

    bytes: int | None
    attribution: str  # "document id" | "window" | "none"
    details: dict[str, Any] = field(default_factory=dict)


def attribute(samples: Sequence[WorkerSample], windows: Sequence[Window]) -> dict[str, PeakRss]:
    """The peak worker RSS per document.

    When workers name the document they parse in their title, a sample counts for the documents
    it names, and only for them ("document id"; a document parsed between two samples gets
    none). Otherwise a sample counts for the one document whose window holds it, if exactly one
    does ("window": documents processed one at a time); samples during overlapping windows count
    for no document.
    """
    peaks: dict[str, int] = {}
    naming = any(sample.documents for sample in samples)
    for sample in samples:
        if naming:
            holding = list(sample.documents)
        else:
            holding = [
                w.document_id
                for w in windows
                if w.start <= sample.at and (w.end is None or sample.at <= w.end)
            ]
            holding = holding if len(holding) == 1 else []
        for document in holding:
            peaks[document] = max(peaks.get(document, 0), sample.rss)
    how = "document id" if naming else "window"
    return {
        w.document_id: PeakRss(peaks[w.document_id], how) if w.document_id in peaks else PeakRss(None, "none")
        for w in windows
    }


def overall_peak(samples: Sequence[WorkerSample], documents: Collection[str]) -> int | None:
    """The highest RSS a worker reached (its high-water mark included) while parsing one of
    ``documents``; every sample counts when workers do not name their document."""
    naming = any(sample.documents for sample in samples)
    mine = [s for s in samples if not naming or s.documents & set(documents)]
    return max((max(s.rss, s.hwm) for s in mine), default=None)
