"""The server recipe with a real server on port 0 and a real channel: interceptors, health,
reflection, metrics, limits and TLS. Test doubles stand in for the business servicers; these
tests need no database.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from grpc_services.context import current_principal, current_request_id
from grpc_services.metrics import SECURITY_HEADERS
from grpc_services.server import RagServer
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.core.errors import NotFound
from rag.proto.rag.v1 import (
    generation_pb2,
    generation_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import load_settings
from tests.fixtures.grpc_server import EventLoopThread, running_server
from tests.unit.test_settings import GOOD

pytestmark = pytest.mark.integration

SETTINGS = load_settings(GOOD)
TOKENS = JwtTokens.from_settings(SETTINGS)


def bearer(role: Role, username: str = "alice", tenant: str = "acme", codec: JwtTokens = TOKENS) -> str:
    return f"Bearer {codec.issue_access(Principal.of(username, tenant, role)).token}"


def auth(role: Role = Role.ADMIN, **kwargs: Any) -> tuple[tuple[str, str], ...]:
    return (("authorization", bearer(role, **kwargs)),)


class ModelsDouble(model_pb2_grpc.ModelServiceServicer):
    """Echoes the caller; fails on purpose in the other RPCs."""

    async def ListModels(self, request: Any, context: Any) -> model_pb2.ListModelsResponse:
        principal = current_principal()
        return model_pb2.ListModelsResponse(
            models=[model_pb2.Model(name=principal.username, registered_model=principal.tenant)]
        )

    async def WarmModels(self, request: Any, context: Any) -> model_pb2.WarmModelsResponse:
        raise NotFound("no model named 'nope'; ListModels shows the names")

    async def CleanupCache(self, request: Any, context: Any) -> model_pb2.CleanupCacheResponse:
        raise RuntimeError("secret internals /etc/passwd")

    async def UpdateAllModels(self, request: Any, context: Any) -> model_pb2.UpdateAllModelsResponse:
        if not request.dry_run:
            raise NotImplementedError
        context.set_trailing_metadata((("x-servicer", "own"),))  # replaces the request id
        return model_pb2.UpdateAllModelsResponse()


class GenerationDouble(generation_pb2_grpc.GenerationServiceServicer):
    async def GenerateStream(self, request: Any, context: Any) -> Any:
        for token in ("Hello", " world"):
            yield generation_pb2.GenerateStreamResponse(token=token)
        if request.question == "fail":
            raise NotFound("the cited chunk is gone")
        yield generation_pb2.GenerateStreamResponse(
            summary=generation_pb2.GenerationSummary(generator_model_version=current_request_id() or "")
        )


@pytest.fixture(scope="module")
def server(grpc_loop: EventLoopThread) -> Iterator[RagServer]:
    servicers = [ModelsDouble(), GenerationDouble()]  # type: ignore[abstract]  # a double serves what the test calls; grpc answers UNIMPLEMENTED for the rest
    with running_server(grpc_loop, SETTINGS, servicers, tokens=TOKENS) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: RagServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


@pytest.fixture(scope="module")
def models(channel: grpc.Channel) -> model_pb2_grpc.ModelServiceStub:
    return model_pb2_grpc.ModelServiceStub(channel)


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, grpc.Call)  # a sync call's RpcError is also the grpc.Call
    return caught.value


def test_valid_token_reaches_the_servicer_with_the_principal(models: Any) -> None:
    reply = models.ListModels(model_pb2.ListModelsRequest(), metadata=auth(Role.ADMIN, username="root"))
    assert (reply.models[0].name, reply.models[0].registered_model) == ("root", "acme")


def test_no_token_is_unauthenticated(models: Any) -> None:
    error = rpc_error(models.ListModels, model_pb2.ListModelsRequest())
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <access token>" in error.details()


def _forged() -> str:
    return bearer(Role.ADMIN, codec=JwtTokens("x" * 40))


def _expired() -> str:
    old = JwtTokens(
        SETTINGS.JWT_SECRET_KEY.get_secret_value(), clock=lambda: datetime.now(UTC) - timedelta(hours=1)
    )
    return bearer(Role.ADMIN, codec=old)


def _wrong_audience() -> str:
    return bearer(Role.ADMIN, codec=JwtTokens(SETTINGS.JWT_SECRET_KEY.get_secret_value(), audience="other"))


def _wrong_issuer() -> str:
    return bearer(Role.ADMIN, codec=JwtTokens(SETTINGS.JWT_SECRET_KEY.get_secret_value(), issuer="other"))


def _refresh() -> str:
    return f"Bearer {TOKENS.issue_refresh(Principal.of('alice', 'acme', Role.ADMIN)).token}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (_expired, "access token expired"),
        (_forged, "bad signature"),
        (_wrong_audience, "another audience"),
        (_wrong_issuer, "another issuer"),
        (_refresh, "a refresh token cannot be used as an access token"),
        (lambda: "Bearer not.a.jwt", "malformed"),
        (lambda: "Basic YWxpY2U6cHc=", "not a bearer token"),
    ],
)
def test_bad_tokens_are_unauthenticated(models: Any, header: Any, message: str) -> None:
    error = rpc_error(
        models.ListModels, model_pb2.ListModelsRequest(), metadata=(("authorization", header()),)
    )
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert message in error.details()


@pytest.mark.parametrize("role", [Role.USER, Role.READONLY])
def test_missing_permission_is_permission_denied(models: Any, role: Role) -> None:
    error = rpc_error(models.ListModels, model_pb2.ListModelsRequest(), metadata=auth(role))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        f"role '{role.value}' lacks the permission 'models:manage' that "
        "rag.v1.ModelService/ListModels needs; ask an administrator for a role that has it"
    )


def test_taxonomy_errors_keep_their_message(models: Any) -> None:
    error = rpc_error(models.WarmModels, model_pb2.WarmModelsRequest(), metadata=auth())
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "no model named 'nope'; ListModels shows the names"


def test_unexpected_errors_are_internal_without_details(models: Any) -> None:
    metadata = (*auth(), ("x-request-id", "bug-report-1"))
    error = rpc_error(models.CleanupCache, model_pb2.CleanupCacheRequest(), metadata=metadata)
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details() == "internal error; quote request id bug-report-1 when reporting it"
    assert "passwd" not in error.details()


def test_unimplemented_methods_and_unregistered_services(models: Any, channel: grpc.Channel) -> None:
    error = rpc_error(models.UpdateAllModels, model_pb2.UpdateAllModelsRequest(), metadata=auth())
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    search = search_pb2_grpc.SearchServiceStub(channel)
    error = rpc_error(search.Search, search_pb2.SearchRequest(query="q"), metadata=auth())
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_request_id_is_echoed_or_generated(models: Any) -> None:
    _, call = models.ListModels.with_call(
        model_pb2.ListModelsRequest(), metadata=(*auth(), ("x-request-id", "abc-123"))
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "abc-123"
    _, call = models.ListModels.with_call(model_pb2.ListModelsRequest(), metadata=auth())
    assert re.fullmatch(r"[0-9a-f]{32}", dict(call.trailing_metadata())["x-request-id"])
    # A hostile id is replaced, not echoed.
    _, call = models.ListModels.with_call(
        model_pb2.ListModelsRequest(), metadata=(*auth(), ("x-request-id", "a b c" + "x" * 200))
    )
    assert re.fullmatch(r"[0-9a-f]{32}", dict(call.trailing_metadata())["x-request-id"])
    # Kept when the servicer sets trailing metadata of its own.
    _, call = models.UpdateAllModels.with_call(
        model_pb2.UpdateAllModelsRequest(dry_run=True), metadata=(*auth(), ("x-request-id", "own-1"))
    )
    assert dict(call.trailing_metadata()) == {"x-servicer": "own", "x-request-id": "own-1"}
    # Also on failures, before any servicer ran.
    error = rpc_error(
        models.ListModels, model_pb2.ListModelsRequest(), metadata=(("x-request-id", "no-auth"),)
    )
    assert dict(error.trailing_metadata())["x-request-id"] == "no-auth"


def test_streams_carry_the_principal_request_id_and_late_errors(channel: grpc.Channel) -> None:
    stub = generation_pb2_grpc.GenerationServiceStub(channel)
    metadata = (*auth(Role.USER), ("x-request-id", "stream-1"))
    events = list(stub.GenerateStream(generation_pb2.GenerateStreamRequest(question="hi"), metadata=metadata))
    assert [e.token for e in events[:2]] == ["Hello", " world"]
    assert events[2].summary.generator_model_version == "stream-1"  # the servicer saw the id

    call = stub.GenerateStream(generation_pb2.GenerateStreamRequest(question="fail"), metadata=metadata)
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for event in call:
            received.append(event.token)
    assert received == ["Hello", " world"]
    error = caught.value
    assert isinstance(error, grpc.Call)  # the stream raises itself: its status and trailers
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert dict(error.trailing_metadata())["x-request-id"] == "stream-1"

    error = rpc_error(
        lambda: list(
            stub.GenerateStream(generation_pb2.GenerateStreamRequest(), metadata=auth(Role.READONLY))
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {
        "rag.v1.ModelService",
        "rag.v1.GenerationService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    assert database.FindFileContainingSymbol("rag.v1.ModelService").name == "rag/v1/model.proto"


def http_get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_metrics_endpoint_counts_by_method_and_code_with_security_headers(
    server: RagServer, models: Any
) -> None:
    models.ListModels(model_pb2.ListModelsRequest(), metadata=auth())
    rpc_error(models.ListModels, model_pb2.ListModelsRequest())
    assert server.metrics_port
    status, headers, body = http_get(server.metrics_port, "/metrics")
    assert status == 200
    for name, value in SECURITY_HEADERS:
        assert headers[name] == value
    assert "Python" not in headers.get("Server", "")
    assert re.search(r'rag_grpc_requests_total\{code="OK",method="rag.v1.ModelService/ListModels"\} \d', body)
    assert re.search(
        r'rag_grpc_requests_total\{code="UNAUTHENTICATED",method="rag.v1.ModelService/ListModels"\} \d', body
    )
    assert (
        'rag_grpc_request_duration_seconds_bucket{le="0.005",method="rag.v1.ModelService/ListModels"}' in body
    )
    assert "rag_grpc_ready 1.0" in body
    assert http_get(server.metrics_port, "/healthz")[0] == 200
    status, headers, _ = http_get(server.metrics_port, "/nothing")
    assert status == 404
    assert headers["X-Frame-Options"] == "DENY"


def health_status(channel: grpc.Channel, service: str = "") -> Any:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status
