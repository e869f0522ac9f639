"""Loads (b) and (c) of a fault cell, plus the health probe, in a thread of their own.

- ``searchers`` closed-loop clients send gRPC Search (hybrid, top 5, a SciFact query in a random
  letter case each time, so the cache does not answer them all), in ``search_tenant`` (one
  with indexed documents: Search on an empty index embeds nothing);
- an upload stream sends small unique texts through UploadDocument, ``uploads_in_flight`` at a
  time, every ``upload_interval_s`` (each acknowledged upload triggers an ``ingest_documents``
  run: an unpaced stream would queue hundreds of runs on a small machine), and records every id
  the server acknowledged and the run it triggered;
- the overall health (``""``) is checked every ``HEALTH_EVERY_S``.

Every call is recorded with its start (``time.monotonic()``) and its status code, so a cell can
split them into before, during and after an outage. The clients behave well: a failed call is
followed by a short pause (the retry hint when refused), and the channel reconnects within a
second of the server's return (reconnect back-off capped at 1 s; gRPC's default grows to 120 s).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.latency import case_variant
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import document_pb2, document_pb2_grpc, search_pb2, search_pb2_grpc
from rag.settings import Settings

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
DEADLINE_S = 10.0
UPLOAD_DEADLINE_S = 30.0
ERROR_PAUSE_S = 0.2  # after a failed call: a client does not spin on a server that is down
HEALTH_EVERY_S = 0.5
# A client's bounded retry: what the graceful row asks to succeed once the stack is back.
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
RETRYABLE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class Call:
    method: str  # "Search" or "Upload"
    started: float  # time.monotonic()
    seconds: float
    code: str  # "OK" or the status name


@dataclass(frozen=True)
class HealthSample:
    at: float  # time.monotonic()
    status: str  # SERVING, NOT_SERVING, or the status name of a failed check


@dataclass
class LoadRecord:
    calls: list[Call] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # document ids of acknowledged uploads
    run_ids: list[str] = field(default_factory=list)  # the ingestion runs those uploads triggered
    health: list[HealthSample] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # "<method> <code>" -> its first message

    def serving_since(self, after: float) -> float | None:
        """The first health sample at or after ``after`` that is SERVING (None: none was)."""
        return next((h.at for h in self.health if h.at >= after and h.status == "SERVING"), None)


def access_metadata(settings: Settings, tenant: str, username: str) -> list[tuple[str, str]]:
    token = JwtTokens.from_settings(settings).issue_access(Principal.of(username, tenant, Role.USER))
    return [("authorization", f"Bearer {token.token}")]


def upload_request(filename: str, text: str) -> list[document_pb2.UploadRequest]:
    return [
        document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(filename=filename, title=filename)),
        document_pb2.UploadRequest(chunk=text.encode()),
    ]


class Loads:
    """Start with :meth:`start` (or ``with``); :meth:`stop` ends the loads and returns the record."""

    def __init__(
        self,
        address: str,
        settings: Settings,
        tenant: str,
        *,
        queries: Sequence[str],
        texts: Sequence[str],
        searchers: int = 8,
        upload_interval_s: float = 2.0,
        uploads_in_flight: int = 1,
        nonce: str = "",
        search_tenant: str | None = None,
    ) -> None:
        self.address = address
        self.tenant = tenant
        self.record = LoadRecord()
        self._queries = list(queries) or ["what causes inflammation"]
        self._texts = list(texts) or ["a short text"]
        self._searchers = searchers
        self._upload_interval_s = upload_interval_s
        self._uploads_in_flight = uploads_in_flight  # 0: no uploads
        self._nonce = nonce
        run = f"{random.getrandbits(32):08x}"
        self._search_metadata = [
            access_metadata(settings, search_tenant or tenant, f"faults-{run}-search-{n}")
            for n in range(searchers)
        ]
        self._upload_metadata = access_metadata(settings, tenant, f"faults-{run}-upload")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uploaded = 0
        self._rng = random.Random(time.time_ns())

    def __enter__(self) -> Loads:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="faults-loads", daemon=True
        )
        self._thread.start()

    def stop(self) -> LoadRecord:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=UPLOAD_DEADLINE_S + 10)
        return self.record

    async def _main(self) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            search = cast(Any, search_pb2_grpc.SearchServiceStub(channel))
            documents = cast(Any, document_pb2_grpc.DocumentServiceStub(channel))
            health = health_pb2_grpc.HealthStub(channel)
            await asyncio.gather(
                self._health(health),
                *(self._searcher(search, n) for n in range(self._searchers)),
                *(self._uploader(documents) for _ in range(self._uploads_in_flight)),
            )

    async def _health(self, stub: health_pb2_grpc.HealthStub) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.aio.AioRpcError as exc:
                status = exc.code().name
            self.record.health.append(HealthSample(began, status))
            await asyncio.sleep(max(0.0, HEALTH_EVERY_S - (time.monotonic() - began)))

    async def _searcher(self, stub: Any, n: int) -> None:
        metadata = self._search_metadata[n]
        while not self._stop.is_set():
            query = case_variant(self._rng.choice(self._queries), self._rng)
            request = search_pb2.SearchRequest(query=query, top_k=5, mode=search_pb2.SEARCH_MODE_HYBRID)
            pause = await self._call("Search", stub.Search(request, metadata=metadata, timeout=DEADLINE_S))
            if pause:
                await asyncio.sleep(pause)

    async def _uploader(self, stub: Any) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self._uploaded += 1
            n = self._uploaded
            text = f"Upload {n} of {self.tenant} [{self._nonce}]\n\n{self._texts[n % len(self._texts)]}"
            call = stub.Upload(
                iter(upload_request(f"upload-{n:05d}.txt", text)),
                metadata=self._upload_metadata,
                timeout=UPLOAD_DEADLINE_S,
            )
            pause = await self._call("Upload", call)
            wait = max(pause, self._upload_interval_s - (time.monotonic() - began))
            if wait > 0:
                await asyncio.sleep(wait)

    async def _call(self, method: str, call: Any) -> float:
        """Await one RPC and record it; the pause before the caller's next call."""
        began = time.monotonic()
        try:
            response = await call
        except grpc.aio.AioRpcError as exc:
            self.record.calls.append(Call(method, began, time.monotonic() - began, exc.code().name))
            self.record.messages.setdefault(f"{method} {exc.code().name}", str(exc.details())[:300])
            pushback = dict(exc.trailing_metadata() or ()).get("grpc-retry-pushback-ms", "")
            return min(2.0, int(pushback) / 1000) if str(pushback).isdigit() else ERROR_PAUSE_S
        self.record.calls.append(Call(method, began, time.monotonic() - began, "OK"))
        if method == "Upload":
            self.record.acknowledged.append(response.document.id)
            if response.ingestion_run_id:
                self.record.run_ids.append(response.ingestion_run_id)
        return 0.0


@dataclass
class RetryOutcome:
    method: str
    succeeded: bool
    attempts: int
    codes: list[str]
    document_id: str | None = None


def retry_probe(
    address: str, settings: Settings, tenant: str, *, query: str, text: str
) -> list[RetryOutcome]:
    """One Search and one Upload on a new channel, each sent again after a back-off
    (``RETRY_DELAYS_S``) while the answer is retryable: what a well-behaved client gets once the
    stack is back. Blocking gRPC: the loads' event loop runs in another thread."""
    metadata = access_metadata(settings, tenant, f"faults-retry-{random.getrandbits(32):08x}")
    name = f"retry-{random.getrandbits(32):08x}.txt"
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        search = cast(Any, search_pb2_grpc.SearchServiceStub(channel))
        documents = cast(Any, document_pb2_grpc.DocumentServiceStub(channel))
        request = search_pb2.SearchRequest(query=query, top_k=5)
        return [
            _retried("Search", lambda: search.Search(request, metadata=metadata, timeout=DEADLINE_S)),
            _retried(
                "Upload",
                lambda: documents.Upload(
                    iter(upload_request(name, f"{text}\n\n[{name}]")),
                    metadata=metadata,
                    timeout=UPLOAD_DEADLINE_S,
                ),
            ),
        ]


def _retried(method: str, send: Callable[[], Any]) -> RetryOutcome:
    codes: list[str] = []
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None), start=1):
        try:
            response = send()
        except grpc.RpcError as exc:
            code = cast(grpc.Call, exc).code().name
            codes.append(code)
            if code not in RETRYABLE or delay is None:
                return RetryOutcome(method, False, attempt, codes)
            time.sleep(delay)
            continue
        codes.append("OK")
        return RetryOutcome(
            method, True, attempt, codes, response.document.id if method == "Upload" else None
        )
    return RetryOutcome(method, False, len(codes), codes)
