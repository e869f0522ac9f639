"""Admission control with a real server on port 0 and a real channel: a call held in its
servicer fills its class; the next one is RESOURCE_EXHAUSTED at once with the retry hint, health
stays SERVING, and a released slot admits again. Stand-in servicers hold the calls; no database.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_services.interceptors.admission import RpcClass
from grpc_services.server import RagServer
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import generation_pb2, generation_pb2_grpc, search_pb2, search_pb2_grpc
from rag.settings import load_settings
from tests.fixtures.grpc_server import EventLoopThread, running_server
from tests.unit.test_settings import GOOD

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SETTINGS = load_settings(GOOD | {"SEARCH_MAX_CONCURRENT": "1", "GENERATE_MAX_CONCURRENT": "1"})
METADATA = (
    (
        "authorization",
        "Bearer "
        + JwtTokens.from_settings(SETTINGS).issue_access(Principal.of("alice", "acme", Role.ADMIN)).token,
    ),
)
SEARCH = search_pb2.SearchRequest(query="held", top_k=5, mode=search_pb2.SEARCH_MODE_HYBRID)
GENERATE = generation_pb2.GenerateStreamRequest(question="held")


class Gate:
    """Holds the stand-in servicers' calls until opened (from the test's thread)."""

    def __init__(self, loop: EventLoopThread) -> None:
        self._loop = loop
        self.event = asyncio.Event()

    def open(self) -> None:
        self._loop.loop.call_soon_threadsafe(self.event.set)


class HeldSearch(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        if request.query == "held":
            await self._gate.event.wait()
        return search_pb2.SearchResponse()


class HeldStream(generation_pb2_grpc.GenerationServiceServicer):
    """Sends one token, then waits for the gate: a stream in progress."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def GenerateStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        yield generation_pb2.GenerateStreamResponse(token="a")
        await self._gate.event.wait()
        yield generation_pb2.GenerateStreamResponse(token="b")


@contextmanager
def served(grpc_loop: EventLoopThread) -> Iterator[tuple[RagServer, grpc.Channel, Gate]]:
    gate = Gate(grpc_loop)
    with (
        running_server(grpc_loop, SETTINGS, [HeldSearch(gate), HeldStream(gate)]) as server,  # type: ignore[abstract]  # a double serves what the test calls; grpc answers UNIMPLEMENTED for the rest
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        try:
            yield server, channel, gate
        finally:
            gate.open()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def refused(call: Callable[[], Any]) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    assert isinstance(error, grpc.Call)  # a sync call's RpcError is also the grpc.Call
    # The refused call's deadline is far away: a queued call would end DEADLINE_EXCEEDED instead.
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    return error


def test_a_full_class_refuses_at_once_with_a_retry_hint_health_serves_and_a_freed_slot_admits(
    grpc_loop: EventLoopThread,
) -> None:
    with served(grpc_loop) as (server, channel, gate):
        search = search_pb2_grpc.SearchServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        slots = server.admission.slots[RpcClass.SEARCH]
        held = search.Search.future(SEARCH, metadata=METADATA, timeout=60)
        wait_for(lambda: slots.in_use == 1 or held.done(), "the held search to take the only slot")
        assert not held.done(), f"the held search ended early: {held.exception()}"

        error = refused(lambda: search.Search(SEARCH, metadata=METADATA, timeout=30))
        assert "1 search calls are already in progress" in error.details()
        assert "SEARCH_MAX_CONCURRENT" in error.details() and "retry in 1 s" in error.details()
        assert ("grpc-retry-pushback-ms", "1000") in tuple(error.trailing_metadata())
        for service in ("", "rag.v1.SearchService"):  # never subject to admission
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
        text = metrics.read().decode()
        assert 'rag_grpc_admission_rejected_total{rpc_class="search"} 1.0' in text
        assert 'rag_grpc_admission_in_flight{rpc_class="search"} 1.0' in text

        gate.open()
        held.result(timeout=30)
        wait_for(lambda: slots.in_use == 0, "the slot to be given back")
        search.Search(SEARCH, metadata=METADATA, timeout=30)  # admitted again


def test_a_stream_holds_its_slot_until_it_is_cancelled(
    grpc_loop: EventLoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    # The access log on: it once read the peer of the cancelled stream, which spins in grpc.aio.
    caplog.set_level(logging.INFO)
    with served(grpc_loop) as (server, channel, _):
        generation = generation_pb2_grpc.GenerationServiceStub(channel)
        slots = server.admission.slots[RpcClass.GENERATE]
        stream = generation.GenerateStream(GENERATE, metadata=METADATA, timeout=60)
        assert next(stream).token == "a"  # in progress, past its first message
        assert slots.in_use == 1

        error = refused(lambda: next(generation.GenerateStream(GENERATE, metadata=METADATA, timeout=30)))
        assert "GENERATE_MAX_CONCURRENT" in error.details()

        stream.cancel()
        wait_for(lambda: slots.in_use == 0, "the cancelled stream to give its slot back")
        fresh = generation.GenerateStream(GENERATE, metadata=METADATA, timeout=30)
        assert next(fresh).token == "a"
        fresh.cancel()
