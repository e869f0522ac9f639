"""The validation layer on a real server (port 0, real channel, no database): every kind of RPC
refuses a hostile or unparseable request with INVALID_ARGUMENT naming the field, before the
servicer runs; authentication still comes first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import (
    document_pb2,
    document_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import load_settings
from tests.fixtures.grpc_server import EventLoopThread, running_server
from tests.unit.test_settings import GOOD

pytestmark = pytest.mark.integration

SETTINGS = load_settings(GOOD)
TOKENS = JwtTokens.from_settings(SETTINGS)
AUTH = (("authorization", f"Bearer {TOKENS.issue_access(Principal.of('a', 'acme', Role.ADMIN)).token}"),)
SEARCH = "/rag.v1.SearchService/Search"
STREAM = "/rag.v1.GenerationService/GenerateStream"
UPLOAD = "/rag.v1.DocumentService/Upload"


class SearchDouble(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    async def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        self.calls.append(request)
        return search_pb2.SearchResponse()


class GenerationDouble(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    async def GenerateStream(self, request: Any, context: Any) -> Any:
        self.calls.append(request)
        yield generation_pb2.GenerateStreamResponse(token="ok")


class DocumentsDouble(document_pb2_grpc.DocumentServiceServicer):
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    async def Upload(self, request_iterator: AsyncIterator[Any], context: Any) -> document_pb2.UploadResponse:
        async for message in request_iterator:
            self.calls.append(message)
        return document_pb2.UploadResponse()


@pytest.fixture(scope="module")
def calls() -> list[Any]:
    return []


@pytest.fixture(scope="module")
def channel(grpc_loop: EventLoopThread, calls: list[Any]) -> Iterator[grpc.Channel]:
    servicers = [SearchDouble(calls), GenerationDouble(calls), DocumentsDouble(calls)]  # type: ignore[abstract]  # a double serves what the test calls; grpc answers UNIMPLEMENTED for the rest
    with (
        running_server(grpc_loop, SETTINGS, servicers, tokens=TOKENS) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened,
    ):
        yield opened


def _status(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details() or ""


def _unary(channel: grpc.Channel, data: bytes, metadata: Any = AUTH) -> Any:
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SEARCH)  # raw bytes both ways
    return lambda: call(data, metadata=metadata, timeout=10)


def _server_stream(channel: grpc.Channel, data: bytes) -> Any:
    call: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(STREAM)
    return lambda: list(call(data, metadata=AUTH, timeout=10))


def _client_stream(channel: grpc.Channel, *messages: bytes) -> Any:
    call: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(UPLOAD)
    return lambda: call(iter(messages), metadata=AUTH, timeout=10)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            search_pb2.SearchRequest(query="a\x00b").SerializeToString(),
            "query: contains a NUL character (U+0000)",
        ),
        (
            search_pb2.SearchRequest(query="ok", mode=42).SerializeToString(),  # type: ignore[arg-type]  # not a SearchMode
            "mode: 42 is not a SearchMode value",
        ),
        (search_pb2.SearchRequest(top_k=2**31 - 1).SerializeToString(), "top_k: must be between 1 and 100"),
        (b"\x0a\x03\xed\xa0\x80", "query: is not valid UTF-8"),  # a lone surrogate
        (b"\x0a\x05ab", "the request is not a valid rag.v1.SearchRequest message"),  # truncated
    ],
)
def test_unary_requests_are_checked_before_the_servicer(
    channel: grpc.Channel, calls: list[Any], data: bytes, expected: str
) -> None:
    calls.clear()
    code, details = _status(_unary(channel, data))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and details.startswith(expected), details
    assert calls == []


def test_authentication_comes_before_validation(channel: grpc.Channel) -> None:
    code, _ = _status(_unary(channel, b"\xff\xff", metadata=()))
    assert code is grpc.StatusCode.UNAUTHENTICATED


def test_a_valid_request_reaches_the_servicer(channel: grpc.Channel, calls: list[Any]) -> None:
    calls.clear()
    _unary(channel, search_pb2.SearchRequest(query="ok").SerializeToString())()
    assert calls == [search_pb2.SearchRequest(query="ok")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            generation_pb2.GenerateStreamRequest(question="q", temperature=float("inf")).SerializeToString(),
            "temperature: must be a finite number",
        ),
        (b"\x18", "the request is not a valid rag.v1.GenerateStreamRequest message"),
    ],
)
def test_server_streams_are_checked(
    channel: grpc.Channel, calls: list[Any], data: bytes, expected: str
) -> None:
    calls.clear()
    code, details = _status(_server_stream(channel, data))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and details.startswith(expected), details
    assert calls == []


def test_each_message_of_a_client_stream_is_checked(channel: grpc.Channel, calls: list[Any]) -> None:
    metadata = document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(filename="a.txt"))
    chunk = document_pb2.UploadRequest(chunk=b"hello")
    calls.clear()
    code, details = _status(
        _client_stream(
            channel,
            metadata.SerializeToString(),
            chunk.SerializeToString(),
            document_pb2.UploadRequest(
                metadata=document_pb2.UploadMetadata(metadata={"k": "v\x00"})
            ).SerializeToString(),
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("metadata.metadata['k']: contains a NUL character"), details
    assert calls == [metadata, chunk]  # the servicer saw the good messages only

    code, details = _status(_client_stream(channel, metadata.SerializeToString(), b"\x12\x05ab"))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("the request is not a valid rag.v1.UploadRequest message"), details
