"""The server recipe with a real server on port 0 and a real channel: interceptors, health,
reflection, metrics, limits and TLS. Test doubles stand in for the business servicers; these
tests need no database.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from grpc_services.context import current_principal, current_request_id
from grpc_services.health import Dependencies
from grpc_services.metrics import SECURITY_HEADERS
from grpc_services.server import RagServer, build_server
from grpc_services.servicers.auth import AuthServicer
from rag.adapters.passwords import Argon2Passwords
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.core.authentication import Authenticator
from rag.core.errors import ConfigurationError, NotFound
from rag.proto.rag.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from rag.settings import Settings, load_settings
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


def _http(port: int, path: str) -> tuple[int, dict[str, str], str]:
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
    status, headers, body = _http(server.metrics_port, "/metrics")
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
    assert _http(server.metrics_port, "/healthz")[0] == 200
    status, headers, _ = _http(server.metrics_port, "/nothing")
    assert status == 404
    assert headers["X-Frame-Options"] == "DENY"


def _health(channel: grpc.Channel, service: str = "") -> Any:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status


def test_health_is_not_serving_until_ready_then_serving(grpc_loop: EventLoopThread) -> None:
    ready = threading.Event()

    async def readiness() -> bool:
        return ready.is_set()

    with (
        running_server(
            grpc_loop, SETTINGS, [ModelsDouble()], readiness=readiness, readiness_interval_s=0.05
        ) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert _health(channel, "rag.v1.ModelService") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert srv.metrics_port
        assert _http(srv.metrics_port, "/readyz")[0] == 503
        ready.set()
        deadline = time.monotonic() + 5
        while _health(channel) != health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert _health(channel, "rag.v1.ModelService") == health_pb2.HealthCheckResponse.SERVING
        assert _http(srv.metrics_port, "/readyz")[0] == 200
        ready.clear()  # a dependency went away
        deadline = time.monotonic() + 5
        while _health(channel) != health_pb2.HealthCheckResponse.NOT_SERVING and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_each_service_follows_the_dependencies_it_needs(grpc_loop: EventLoopThread) -> None:
    up = {"database": threading.Event(), "generator": threading.Event()}

    def check(name: str):  # type: ignore[no-untyped-def]
        async def ready() -> bool:
            return up[name].is_set()

        return ready

    dependencies = Dependencies({name: check(name) for name in up}, {"rag.v1.ModelService": ("database",)})
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

    def wait_for(channel: grpc.Channel, expected: tuple[Any, Any]) -> tuple[Any, Any]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = (_health(channel), _health(channel, "rag.v1.ModelService"))
            if seen == expected:
                break
            time.sleep(0.02)
        return seen

    with (
        running_server(
            grpc_loop, SETTINGS, [ModelsDouble()], readiness=dependencies, readiness_interval_s=0.05
        ) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        assert wait_for(channel, (not_serving, not_serving)) == (not_serving, not_serving)
        up["database"].set()  # what ModelService needs; the generator (overall) is still down
        assert wait_for(channel, (not_serving, serving)) == (not_serving, serving)
        assert srv.metrics_port
        assert _http(srv.metrics_port, "/readyz")[0] == 503
        up["generator"].set()
        assert wait_for(channel, (serving, serving)) == (serving, serving)
        up["database"].clear()
        assert wait_for(channel, (not_serving, not_serving)) == (not_serving, not_serving)

    with pytest.raises(ValueError, match="unknown dependencies"):
        Dependencies({"database": check("database")}, {"rag.v1.SearchService": ("embedder",)})


def test_stop_goes_not_serving_before_closing(grpc_loop: EventLoopThread) -> None:
    with (
        running_server(grpc_loop, SETTINGS, [ModelsDouble()]) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stopping = grpc_loop.loop.call_soon_threadsafe  # schedule stop without waiting for it
        stopping(lambda: grpc_loop.loop.create_task(srv.stop(2)))
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()


def test_failing_readiness_check_counts_as_not_ready(grpc_loop: EventLoopThread) -> None:
    async def broken() -> bool:
        raise ConnectionError("database down")

    with running_server(
        grpc_loop, SETTINGS, [ModelsDouble()], readiness=broken, readiness_interval_s=0.05
    ) as srv:
        time.sleep(0.2)
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_rate_limit_per_principal(grpc_loop: EventLoopThread) -> None:
    limited = SETTINGS.model_copy(update={"RATE_LIMIT_PER_SECOND": 0.5, "RATE_LIMIT_BURST": 3})
    with (
        running_server(grpc_loop, limited, [ModelsDouble()], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = model_pb2_grpc.ModelServiceStub(channel)
        for _ in range(3):
            stub.ListModels(model_pb2.ListModelsRequest(), metadata=auth(username="alice"))
        error = rpc_error(stub.ListModels, model_pb2.ListModelsRequest(), metadata=auth(username="alice"))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate limit of 0.5 requests/s exceeded" in error.details()
        # Another principal has its own bucket; health checks are never limited.
        stub.ListModels(model_pb2.ListModelsRequest(), metadata=auth(username="bob"))
        for _ in range(10):
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        # Calls without a valid token are refused before they count against anyone's bucket.
        for _ in range(5):
            error = rpc_error(stub.ListModels, model_pb2.ListModelsRequest())
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED


class NoUsers:
    async def get(self, username: str) -> None:
        return None

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        raise AssertionError("not called")


def test_login_attempts_are_limited_per_client_address(grpc_loop: EventLoopThread) -> None:
    limited = SETTINGS.model_copy(update={"RATE_LIMIT_PER_SECOND": 0.5, "RATE_LIMIT_BURST": 3})
    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    authenticator = Authenticator(NoUsers(), Argon2Passwords(cheap), TOKENS)
    with (
        running_server(grpc_loop, limited, [AuthServicer(authenticator)], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        guess = auth_pb2.LoginRequest(username="alice", password="guess")
        codes = [rpc_error(stub.Login, guess).code() for _ in range(5)]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2


def test_message_size_limit(grpc_loop: EventLoopThread) -> None:
    small = SETTINGS.model_copy(update={"GRPC_MAX_MESSAGE_BYTES": 64 * 1024})
    with (
        running_server(grpc_loop, small, [ModelsDouble()], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = model_pb2_grpc.ModelServiceStub(channel)
        big = model_pb2.WarmModelsRequest(model_names=["x" * (100 * 1024)])
        error = rpc_error(stub.WarmModels, big, metadata=auth())
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_build_refuses_duplicates_and_busy_ports(grpc_loop: EventLoopThread) -> None:
    async def build(port: int = 0, servicers: tuple[object, ...] = (ModelsDouble(),)) -> RagServer:
        return build_server(SETTINGS, list(servicers), host="127.0.0.1", port=port)

    with pytest.raises(ConfigurationError, match="registered twice"):
        grpc_loop.run(build(servicers=(ModelsDouble(), ModelsDouble())))
    with (
        running_server(grpc_loop, SETTINGS, [ModelsDouble()]) as srv,
        pytest.raises(ConfigurationError, match=rf"cannot listen on 127.0.0.1:{srv.port}"),
    ):
        grpc_loop.run(build(port=srv.port))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_from_cert_and_key_settings(grpc_loop: EventLoopThread, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls: Settings = load_settings(GOOD | {"GRPC_TLS_CERT_FILE": str(cert), "GRPC_TLS_KEY_FILE": str(key)})
    with running_server(grpc_loop, tls, [ModelsDouble()], tokens=TOKENS) as srv:
        assert srv.tls
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.port}", credentials) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
            reply = model_pb2_grpc.ModelServiceStub(channel).ListModels(
                model_pb2.ListModelsRequest(), metadata=auth()
            )
            assert reply.models[0].name == "alice"
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as plain:
            with pytest.raises(grpc.RpcError) as caught:
                health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_settings_come_in_pairs(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(
        ConfigurationError, match="GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together"
    ):
        load_settings(GOOD | {"GRPC_TLS_CERT_FILE": str(cert)})
    with pytest.raises(ConfigurationError, match="GRPC_TLS_KEY_FILE"):
        load_settings(
            GOOD | {"GRPC_TLS_CERT_FILE": str(cert), "GRPC_TLS_KEY_FILE": str(tmp_path / "missing")}
        )
